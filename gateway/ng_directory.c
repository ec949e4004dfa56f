/*
 * The directory is built in two passes over the vault: the first reads the
 * public JSON records and counts what they hold, so that the second can
 * place every secret in one sodium_malloc arena of the right size (a guarded
 * allocation per secret would cost pages each).
 */
#include "ng_directory.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_hex.h"
#include "ng_tenant.h"
#include "ng_webhook.h"

enum {
    NAME_CAP = 256,
    SECRET = 32,
    SIGN_SK = 64,
    WHSEC_MAX = NG_WEBHOOK_SECRET_MAX,
    POOL_CHUNK = 64 * 1024,
};

/* Public data: strings and arrays, freed all at once. */
struct chunk {
    struct chunk *next;
    size_t used, cap;
    _Alignas(max_align_t) unsigned char data[];
};

struct key_index {
    uint8_t id[NG_KEY_ID_BYTES];
    uint32_t tenant, key;
};

struct token_index {
    uint8_t digest[32]; /* BLAKE2b of the token: the table is searched by it, never by the secret */
    uint32_t tenant;
};

struct sender_index {
    uint32_t tenant;
    uint8_t id[NG_KEY_ID_BYTES];
    uint32_t peer, key;
};

struct ng_directory {
    atomic_uint refs;
    ng_dir_tenant *tenants;
    size_t n;
    struct chunk *pool;
    uint8_t *secret; /* sodium_malloc */
    size_t secret_cap, secret_used;
    struct key_index *by_key;
    size_t nby_key;
    struct token_index *by_token;
    size_t nby_token;
    struct sender_index *by_sender;
    size_t nby_sender;
};

/* What the first pass read of one tenant. */
struct draft {
    char slug[NG_TENANT_MAX_SLUG + 1];
    json_t *rec, *backends, *peers;
};

static void *
pool_alloc(ng_directory *d, size_t len)
{
    struct chunk *c = d->pool;
    void *p;

    len = (len + _Alignof(max_align_t) - 1) & ~(_Alignof(max_align_t) - 1);
    if (c == NULL || c->cap - c->used < len) {
        size_t cap = len > POOL_CHUNK ? len : POOL_CHUNK;

        c = malloc(sizeof *c + cap);
        if (c == NULL)
            return NULL;
        c->next = d->pool;
        c->used = 0;
        c->cap = cap;
        d->pool = c;
    }
    p = c->data + c->used;
    c->used += len;
    memset(p, 0, len);
    return p;
}

static const char *
pool_str(ng_directory *d, const char *s)
{
    size_t len = strlen(s) + 1;
    char *p = pool_alloc(d, len);

    if (p != NULL)
        memcpy(p, s, len);
    return p;
}

static uint8_t *
secret_alloc(ng_directory *d, size_t len)
{
    uint8_t *p;

    if (d->secret_cap - d->secret_used < len)
        return NULL; /* the first pass counted wrong: a bug, reported as corrupt */
    p = d->secret + d->secret_used;
    d->secret_used += len;
    return p;
}

static ng_err
hex_field(json_t *obj, const char *field, uint8_t *out, size_t len)
{
    const char *s = json_string_value(json_object_get(obj, field));

    if (s == NULL || strlen(s) != 2 * len)
        return NG_ERR_CORRUPT;
    return ng_hex_decode(out, len, s, strlen(s)) == NG_OK ? NG_OK : NG_ERR_CORRUPT;
}

static ng_err
patterns_of(json_t *arr, unsigned *set, ng_pattern *prefer, size_t *nprefer)
{
    size_t i;
    json_t *p;

    *set = 0;
    if (nprefer != NULL)
        *nprefer = 0;
    if (!json_is_array(arr))
        return NG_ERR_CORRUPT;
    json_array_foreach(arr, i, p)
    {
        ng_pattern pat;

        if (!json_is_string(p) || ng_pattern_parse(json_string_value(p), &pat) != NG_OK)
            return NG_ERR_CORRUPT;
        if ((*set & NG_DIR_PATTERN_BIT(pat)) != 0)
            continue;
        *set |= NG_DIR_PATTERN_BIT(pat);
        if (prefer != NULL)
            prefer[(*nprefer)++] = pat;
    }
    return NG_OK;
}

/* Without the peer's psk nothing can be sealed to it in a psk pattern, whatever its parameters list. */
static void
drop_psk_patterns(ng_dir_peer *p)
{
    size_t i, n = 0;

    for (i = 0; i < p->nprefer; i++) {
        if (ng_pattern_has_psk(p->prefer[i]))
            p->patterns &= ~NG_DIR_PATTERN_BIT(p->prefer[i]);
        else
            p->prefer[n++] = p->prefer[i];
    }
    p->nprefer = n;
}

static int
by_epoch(json_t *keys, size_t i, size_t j)
{
    return json_integer_value(json_object_get(json_array_get(keys, i), "epoch")) <
           json_integer_value(json_object_get(json_array_get(keys, j), "epoch"));
}

/* Epochs must be distinct and in 1..UINT32_MAX; returns the order that sorts them (insertion sort: at most a few
 * dozen). */
static ng_err
epoch_order(json_t *keys, size_t *order, size_t n)
{
    size_t i, j;

    for (i = 0; i < n; i++) {
        json_int_t e = json_integer_value(json_object_get(json_array_get(keys, i), "epoch"));

        if (e < 1 || e > (json_int_t)UINT32_MAX)
            return NG_ERR_CORRUPT;
        order[i] = i;
    }
    for (i = 1; i < n; i++)
        for (j = i; j > 0 && by_epoch(keys, order[j], order[j - 1]); j--) {
            size_t t = order[j];

            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    for (i = 1; i < n; i++)
        if (!by_epoch(keys, order[i - 1], order[i]))
            return NG_ERR_CORRUPT;
    return NG_OK;
}

static ng_err
load_secret(ng_directory *d, ng_vault *v, const char *name, size_t min, size_t max, const uint8_t **out, size_t *len)
{
    uint8_t *sec = secret_alloc(d, max);
    ng_err err;

    *out = NULL;
    *len = 0;
    if (sec == NULL)
        return NG_ERR_CORRUPT;
    err = ng_vault_get(v, name, sec, max, len);
    if (err == NG_OK && *len < min)
        err = NG_ERR_CORRUPT;
    if (err == NG_OK)
        *out = sec;
    return err == NG_ERR_BUFFER_TOO_SMALL ? NG_ERR_CORRUPT : err;
}

static ng_err
load_keys(ng_directory *d, ng_vault *v, ng_dir_tenant *t, json_t *rec)
{
    json_t *keys = json_object_get(rec, "keys");
    size_t n = json_array_size(keys), order[NG_TENANT_MAX_KEYS], i;
    ng_dir_key *out;
    ng_err err;

    if (!json_is_array(keys) || n == 0 || n > NG_TENANT_MAX_KEYS)
        return NG_ERR_CORRUPT;
    if ((err = epoch_order(keys, order, n)) != NG_OK)
        return err;
    out = pool_alloc(d, n * sizeof *out);
    if (out == NULL)
        return NG_ERR_NOMEM;
    for (i = 0; i < n; i++) {
        json_t *k = json_array_get(keys, order[i]);
        ng_keypair *kp;

        out[i].epoch = (uint32_t)json_integer_value(json_object_get(k, "epoch"));
        if ((err = hex_field(k, "public", out[i].pub, NG_KEY_BYTES)) != NG_OK)
            return err;
        ng_key_id(out[i].id, out[i].pub);
        /* End-to-end: the backend holds the private key, the gateway only the public one. */
        if (json_is_true(json_object_get(k, "held_by_backend")))
            continue;
        if ((kp = (ng_keypair *)secret_alloc(d, sizeof *kp)) == NULL)
            return NG_ERR_CORRUPT;
        err = ng_tenant_keypair(v, t->slug, out[i].epoch, kp);
        if (err == NG_ERR_NOT_FOUND || err == NG_ERR_INVALID_ARG)
            err = NG_ERR_CORRUPT;
        if (err)
            return err;
        out[i].kp = kp;
    }
    t->keys = out;
    t->nkeys = n;
    return NG_OK;
}

static ng_err
load_backends(ng_directory *d, ng_vault *v, ng_dir_tenant *t, json_t *list)
{
    size_t n = json_array_size(list), i;
    char name[NAME_CAP];
    ng_dir_backend *out;
    json_t *b;
    ng_err err;

    if (n == 0)
        return NG_OK;
    out = pool_alloc(d, n * sizeof *out);
    if (out == NULL)
        return NG_ERR_NOMEM;
    json_array_foreach(list, i, b)
    {
        const char *id = json_string_value(json_object_get(b, "id"));
        const char *url = json_string_value(json_object_get(b, "url"));
        const char *pk = json_string_value(json_object_get(b, "public_key"));
        const char *status = json_string_value(json_object_get(b, "status"));
        const char *adapter = json_string_value(json_object_get(b, "adapter"));
        const char *mode = json_string_value(json_object_get(b, "mode"));
        const char *subject = json_string_value(json_object_get(b, "subject"));
        char fallback[sizeof "noisegate." + NG_TENANT_MAX_SLUG];

        if (id == NULL || url == NULL || pk == NULL || status == NULL)
            return NG_ERR_CORRUPT;
        /* Records from before adapters and modes are webhooks that get opened messages. */
        out[i].nats = adapter != NULL && strcmp(adapter, "nats") == 0;
        out[i].sealed = mode != NULL && strcmp(mode, "sealed") == 0;
        snprintf(fallback, sizeof fallback, "noisegate.%s", t->slug);
        out[i].id = pool_str(d, id);
        out[i].url = pool_str(d, url);
        out[i].subject = pool_str(d, subject != NULL ? subject : fallback);
        if (out[i].id == NULL || out[i].url == NULL || out[i].subject == NULL)
            return NG_ERR_NOMEM;
        out[i].active = strcmp(status, "active") == 0;
        if (pk[0] != '\0') {
            if (ng_webhook_public_parse(pk, out[i].pk) != NG_OK)
                return NG_ERR_CORRUPT;
            out[i].has_pk = 1;
        }
        snprintf(name, sizeof name, "tenant/%s/backend/%s/whsec", t->slug, id);
        err = load_secret(d, v, name, NG_WEBHOOK_SECRET_MIN, WHSEC_MAX, &out[i].whsec, &out[i].whsec_len);
        if (err)
            return err == NG_ERR_NOT_FOUND ? NG_ERR_CORRUPT : err;
        /* Present only while a rotation is under way. */
        snprintf(name, sizeof name, "tenant/%s/backend/%s/whsec.prev", t->slug, id);
        err = load_secret(d, v, name, NG_WEBHOOK_SECRET_MIN, WHSEC_MAX, &out[i].whsec_prev, &out[i].whsec_prev_len);
        if (err && err != NG_ERR_NOT_FOUND)
            return err;
    }
    t->backends = out;
    t->nbackends = n;
    return NG_OK;
}

/* An optional 32-byte secret of a peer: NULL if absent. */
static ng_err
peer_secret(ng_directory *d, ng_vault *v, const char *slug, const char *peer, const char *which, const uint8_t **out)
{
    char name[NAME_CAP];
    size_t len;
    ng_err err;

    snprintf(name, sizeof name, "tenant/%s/peer/%s/%s", slug, peer, which);
    err = load_secret(d, v, name, SECRET, SECRET, out, &len);
    return err == NG_ERR_NOT_FOUND ? NG_OK : err;
}

static ng_err
load_peers(ng_directory *d, ng_vault *v, ng_dir_tenant *t, json_t *list)
{
    size_t n = json_array_size(list), i, j;
    ng_dir_peer *out;
    json_t *p;
    ng_err err;

    if (n == 0)
        return NG_OK;
    out = pool_alloc(d, n * sizeof *out);
    if (out == NULL)
        return NG_ERR_NOMEM;
    json_array_foreach(list, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *outbox = json_string_value(json_object_get(p, "outbox"));
        const char *remote = json_string_value(json_object_get(p, "peer_name"));
        json_t *keys = json_object_get(p, "keys");
        size_t nk = json_array_size(keys), order[NG_TENANT_MAX_KEYS];
        ng_dir_peer_key *pk;

        if (name == NULL || outbox == NULL || !json_is_array(keys) || nk == 0 || nk > NG_TENANT_MAX_KEYS)
            return NG_ERR_CORRUPT;
        if ((err = epoch_order(keys, order, nk)) != NG_OK)
            return err;
        out[i].name = pool_str(d, name);
        out[i].remote = pool_str(d, remote != NULL ? remote : name);
        out[i].outbox = pool_str(d, outbox);
        pk = pool_alloc(d, nk * sizeof *pk);
        if (out[i].name == NULL || out[i].remote == NULL || out[i].outbox == NULL || pk == NULL)
            return NG_ERR_NOMEM;
        for (j = 0; j < nk; j++) {
            json_t *k = json_array_get(keys, order[j]);

            pk[j].epoch = (uint32_t)json_integer_value(json_object_get(k, "epoch"));
            if ((err = hex_field(k, "public", pk[j].pub, NG_KEY_BYTES)) != NG_OK)
                return err;
            ng_key_id(pk[j].id, pk[j].pub);
        }
        out[i].keys = pk;
        out[i].nkeys = nk;
        if ((err = patterns_of(json_object_get(p, "patterns"), &out[i].patterns, out[i].prefer, &out[i].nprefer)) !=
                NG_OK ||
            (err = hex_field(p, "signing_key", out[i].signing_key, 32)) != NG_OK)
            return err;
        if ((err = peer_secret(d, v, t->slug, name, "psk", &out[i].psk)) != NG_OK ||
            (err = peer_secret(d, v, t->slug, name, "read_token", &out[i].read_token)) != NG_OK)
            return err;
        if (out[i].psk == NULL)
            drop_psk_patterns(&out[i]);
    }
    t->peers = out;
    t->npeers = n;
    return NG_OK;
}

static ng_err
load_tenant(ng_directory *d, ng_vault *v, ng_dir_tenant *t, const struct draft *dr)
{
    json_t *limits = json_object_get(dr->rec, "limits");
    json_int_t max_message = json_integer_value(json_object_get(limits, "max_message"));
    json_int_t rate = json_integer_value(json_object_get(limits, "rate"));
    uint8_t *sec;
    ng_err err;

    t->slug = pool_str(d, dr->slug);
    if (t->slug == NULL)
        return NG_ERR_NOMEM;
    if (max_message < 0 || rate < 0 || rate > (json_int_t)UINT32_MAX)
        return NG_ERR_CORRUPT;
    t->max_message = (uint64_t)max_message;
    t->rate = (uint32_t)rate;
    if ((err = patterns_of(json_object_get(dr->rec, "patterns"), &t->patterns, NULL, NULL)) != NG_OK ||
        (err = hex_field(dr->rec, "signing_public", t->sign_pk, sizeof t->sign_pk)) != NG_OK ||
        (err = load_keys(d, v, t, dr->rec)) != NG_OK)
        return err;
    if ((sec = secret_alloc(d, SIGN_SK)) == NULL)
        return NG_ERR_CORRUPT;
    if ((err = ng_tenant_secret(v, t->slug, "sign", sec, SIGN_SK)) != NG_OK)
        return err == NG_ERR_NOT_FOUND ? NG_ERR_CORRUPT : err;
    t->sign_sk = sec;
    if ((sec = secret_alloc(d, SECRET)) == NULL)
        return NG_ERR_CORRUPT;
    if ((err = ng_tenant_secret(v, t->slug, "read_token", sec, SECRET)) != NG_OK)
        return err == NG_ERR_NOT_FOUND ? NG_ERR_CORRUPT : err;
    t->read_token = sec;
    if (json_is_true(json_object_get(dr->rec, "psk"))) {
        if ((sec = secret_alloc(d, SECRET)) == NULL)
            return NG_ERR_CORRUPT;
        if ((err = ng_tenant_secret(v, t->slug, "psk", sec, SECRET)) != NG_OK)
            return err == NG_ERR_NOT_FOUND ? NG_ERR_CORRUPT : err;
        t->psk = sec;
    }
    if ((err = load_backends(d, v, t, dr->backends)) != NG_OK)
        return err;
    return load_peers(d, v, t, dr->peers);
}

/* The secret bytes a tenant will take, from its public records. */
static size_t
secret_need(const struct draft *dr)
{
    size_t need = json_array_size(json_object_get(dr->rec, "keys")) * sizeof(ng_keypair) + SIGN_SK + 2 * SECRET;

    need += json_array_size(dr->backends) * 2 * WHSEC_MAX;
    need += json_array_size(dr->peers) * 2 * SECRET;
    return need;
}

static int
cmp_key(const void *a, const void *b)
{
    return memcmp(((const struct key_index *)a)->id, ((const struct key_index *)b)->id, NG_KEY_ID_BYTES);
}

static int
cmp_token(const void *a, const void *b)
{
    return memcmp(((const struct token_index *)a)->digest, ((const struct token_index *)b)->digest, 32);
}

static int
cmp_sender(const void *a, const void *b)
{
    const struct sender_index *x = a, *y = b;

    if (x->tenant != y->tenant)
        return x->tenant < y->tenant ? -1 : 1;
    return memcmp(x->id, y->id, NG_KEY_ID_BYTES);
}

static int
cmp_tenant(const void *a, const void *b)
{
    return strcmp(((const ng_dir_tenant *)a)->slug, ((const ng_dir_tenant *)b)->slug);
}

static ng_err
build_indexes(ng_directory *d)
{
    size_t i, j, k, nk = 0, ns = 0;

    for (i = 0; i < d->n; i++) {
        nk += d->tenants[i].nkeys;
        for (j = 0; j < d->tenants[i].npeers; j++)
            ns += d->tenants[i].peers[j].nkeys;
    }
    d->by_key = calloc(nk ? nk : 1, sizeof *d->by_key);
    d->by_token = calloc(d->n ? d->n : 1, sizeof *d->by_token);
    d->by_sender = calloc(ns ? ns : 1, sizeof *d->by_sender);
    if (d->by_key == NULL || d->by_token == NULL || d->by_sender == NULL)
        return NG_ERR_NOMEM;
    for (i = 0; i < d->n; i++) {
        const ng_dir_tenant *t = &d->tenants[i];

        for (j = 0; j < t->nkeys; j++) {
            memcpy(d->by_key[d->nby_key].id, t->keys[j].id, NG_KEY_ID_BYTES);
            d->by_key[d->nby_key].tenant = (uint32_t)i;
            d->by_key[d->nby_key++].key = (uint32_t)j;
        }
        crypto_generichash(d->by_token[i].digest, 32, t->read_token, SECRET, NULL, 0);
        d->by_token[i].tenant = (uint32_t)i;
        for (j = 0; j < t->npeers; j++)
            for (k = 0; k < t->peers[j].nkeys; k++) {
                struct sender_index *s = &d->by_sender[d->nby_sender++];

                s->tenant = (uint32_t)i;
                memcpy(s->id, t->peers[j].keys[k].id, NG_KEY_ID_BYTES);
                s->peer = (uint32_t)j;
                s->key = (uint32_t)k;
            }
    }
    d->nby_token = d->n;
    qsort(d->by_key, d->nby_key, sizeof *d->by_key, cmp_key);
    qsort(d->by_token, d->nby_token, sizeof *d->by_token, cmp_token);
    qsort(d->by_sender, d->nby_sender, sizeof *d->by_sender, cmp_sender);
    /* Two live keys with one id would make a parcel's recipient ambiguous. */
    for (i = 1; i < d->nby_key; i++)
        if (cmp_key(&d->by_key[i - 1], &d->by_key[i]) == 0)
            return NG_ERR_CORRUPT;
    return NG_OK;
}

static void
drafts_free(struct draft *dr, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        json_decref(dr[i].rec);
        json_decref(dr[i].backends);
        json_decref(dr[i].peers);
    }
    free(dr);
}

/* Pass one: the slugs and public records, and the secret bytes they will need. */
static ng_err
read_drafts(ng_vault *v, struct draft **out, size_t *count, size_t *need)
{
    struct draft *dr = NULL;
    size_t n = 0, cap = 0, i;
    ng_err err = NG_OK;

    *need = 0;
    for (i = ng_vault_lower_bound(v, "tenant/"); i < ng_vault_count(v) && err == NG_OK; i++) {
        const char *name = ng_vault_name(v, i), *slug = name + 7;

        if (strncmp(name, "tenant/", 7) != 0)
            break;
        if (strchr(slug, '/') != NULL)
            continue;
        if (!ng_tenant_slug_ok(slug)) {
            err = NG_ERR_CORRUPT;
            break;
        }
        if (n == cap) {
            struct draft *bigger = realloc(dr, (cap ? 2 * cap : 16) * sizeof *dr);

            if (bigger == NULL) {
                err = NG_ERR_NOMEM;
                break;
            }
            dr = bigger;
            cap = cap ? 2 * cap : 16;
        }
        memset(&dr[n], 0, sizeof dr[n]);
        snprintf(dr[n].slug, sizeof dr[n].slug, "%s", slug);
        n++;
        err = ng_tenant_record(v, slug, &dr[n - 1].rec);
        if (err == NG_OK)
            err = ng_tenant_records(v, slug, "backend", "id", &dr[n - 1].backends);
        if (err == NG_OK)
            err = ng_tenant_records(v, slug, "peer", "name", &dr[n - 1].peers);
        if (err == NG_OK)
            *need += secret_need(&dr[n - 1]);
    }
    if (err) {
        drafts_free(dr, n);
        return err == NG_ERR_NOT_FOUND ? NG_ERR_CORRUPT : err;
    }
    *out = dr;
    *count = n;
    return NG_OK;
}

ng_err
ng_directory_load(ng_directory **out, ng_vault *v)
{
    struct draft *dr;
    ng_directory *d;
    size_t n, need, i;
    ng_err err;

    *out = NULL;
    err = read_drafts(v, &dr, &n, &need);
    if (err)
        return err;
    d = calloc(1, sizeof *d);
    if (d == NULL) {
        drafts_free(dr, n);
        return NG_ERR_NOMEM;
    }
    atomic_init(&d->refs, 1);
    d->secret_cap = need;
    d->secret = sodium_malloc(need ? need : 1);
    d->tenants = calloc(n ? n : 1, sizeof *d->tenants);
    if (d->secret == NULL || d->tenants == NULL)
        err = NG_ERR_NOMEM;
    for (i = 0; i < n && err == NG_OK; i++)
        err = load_tenant(d, v, &d->tenants[i], &dr[i]);
    d->n = i;
    drafts_free(dr, n);
    if (err == NG_OK) {
        qsort(d->tenants, d->n, sizeof *d->tenants, cmp_tenant);
        err = build_indexes(d);
    }
    if (err) {
        ng_directory_release(d);
        return err;
    }
    *out = d;
    return NG_OK;
}

ng_directory *
ng_directory_hold(ng_directory *d)
{
    atomic_fetch_add_explicit(&d->refs, 1, memory_order_relaxed);
    return d;
}

void
ng_directory_release(ng_directory *d)
{
    struct chunk *c;

    if (d == NULL || atomic_fetch_sub_explicit(&d->refs, 1, memory_order_acq_rel) != 1)
        return;
    if (d->secret != NULL) {
        sodium_memzero(d->secret, d->secret_cap);
        sodium_free(d->secret);
    }
    while ((c = d->pool) != NULL) {
        d->pool = c->next;
        free(c);
    }
    free(d->tenants);
    free(d->by_key);
    if (d->by_token != NULL)
        sodium_memzero(d->by_token, d->nby_token * sizeof *d->by_token);
    free(d->by_token);
    free(d->by_sender);
    free(d);
}

size_t
ng_directory_count(const ng_directory *d)
{
    return d->n;
}

const ng_dir_tenant *
ng_directory_at(const ng_directory *d, size_t i)
{
    return i < d->n ? &d->tenants[i] : NULL;
}

const ng_dir_tenant *
ng_directory_tenant(const ng_directory *d, const char *slug)
{
    ng_dir_tenant key;

    memset(&key, 0, sizeof key);
    key.slug = slug;
    return bsearch(&key, d->tenants, d->n, sizeof *d->tenants, cmp_tenant);
}

const ng_dir_tenant *
ng_directory_recipient(const ng_directory *d, const uint8_t key_id[NG_KEY_ID_BYTES], const ng_dir_key **key)
{
    struct key_index probe, *hit;

    memcpy(probe.id, key_id, NG_KEY_ID_BYTES);
    hit = bsearch(&probe, d->by_key, d->nby_key, sizeof *d->by_key, cmp_key);
    if (hit == NULL)
        return NULL;
    if (key != NULL)
        *key = &d->tenants[hit->tenant].keys[hit->key];
    return &d->tenants[hit->tenant];
}

const ng_dir_tenant *
ng_directory_reader(const ng_directory *d, const uint8_t *token, size_t len)
{
    struct token_index probe, *hit;
    const ng_dir_tenant *t;

    if (len != SECRET)
        return NULL;
    crypto_generichash(probe.digest, 32, token, len, NULL, 0);
    hit = bsearch(&probe, d->by_token, d->nby_token, sizeof *d->by_token, cmp_token);
    sodium_memzero(&probe, sizeof probe);
    if (hit == NULL)
        return NULL;
    t = &d->tenants[hit->tenant];
    return sodium_memcmp(t->read_token, token, SECRET) == 0 ? t : NULL;
}

const ng_dir_peer *
ng_directory_peer(const ng_dir_tenant *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->npeers; i++)
        if (strcmp(t->peers[i].name, name) == 0)
            return &t->peers[i];
    return NULL;
}

const ng_dir_peer *
ng_directory_sender(const ng_directory *d, const ng_dir_tenant *t, const uint8_t key_id[NG_KEY_ID_BYTES],
                    const ng_dir_peer_key **key)
{
    struct sender_index probe, *hit;

    probe.tenant = (uint32_t)(t - d->tenants);
    if (t < d->tenants || probe.tenant >= d->n)
        return NULL;
    memcpy(probe.id, key_id, NG_KEY_ID_BYTES);
    hit = bsearch(&probe, d->by_sender, d->nby_sender, sizeof *d->by_sender, cmp_sender);
    if (hit == NULL)
        return NULL;
    if (key != NULL)
        *key = &t->peers[hit->peer].keys[hit->key];
    return &t->peers[hit->peer];
}

const ng_dir_backend *
ng_directory_backend(const ng_dir_tenant *t, const char *id)
{
    size_t i;

    for (i = 0; i < t->nbackends; i++)
        if (strcmp(t->backends[i].id, id) == 0)
            return &t->backends[i];
    return NULL;
}

/*
 * The directory: a snapshot of what ng_tenant and ng_peer wrote, with every
 * lookup checked against the vault it came from (keys by epoch and key id,
 * read tokens, peers' keys, backends and their secrets), damaged records
 * refused, and holders keeping a snapshot alive. Keys held by a tenant's
 * backend (end-to-end mode) load with their public half only, and
 * ng_receive takes parcels sealed to them in on their headers.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_directory.h"
#include "ng_hex.h"
#include "ng_parcel.h"
#include "ng_peer.h"
#include "ng_receive.h"
#include "ng_tenant.h"
#include "ng_vault.h"
#include "ng_webhook.h"

#define NOW ((int64_t)1700000000)

static char g_dir[256];
static ng_vault_store *g_store;
static ng_vault *g_v;

static int
setup(void **state)
{
    char path[300];
    uint8_t key[NG_VAULT_KEY_BYTES];
    ng_vault_secret s = {0, key, sizeof key, 0, 0};
    ng_err err;

    (void)state;
    snprintf(g_dir, sizeof g_dir, "%s/ngdir-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(g_dir) == NULL)
        return -1;
    snprintf(path, sizeof path, "%s/vault", g_dir);
    randombytes_buf(key, sizeof key);
    err = ng_vault_store_file(&g_store, path);
    if (err == NG_OK)
        err = ng_vault_create(g_store, &s);
    if (err == NG_OK)
        err = ng_vault_open(&g_v, g_store, &s);
    sodium_memzero(key, sizeof key);
    return err == NG_OK ? 0 : -1;
}

static int
teardown(void **state)
{
    char cmd[400];

    (void)state;
    ng_vault_close(g_v);
    ng_vault_store_free(g_store);
    g_v = NULL;
    g_store = NULL;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void
create(const char *slug, int psk, int anon)
{
    ng_tenant_opts o = {psk, anon, 4096, 10};

    assert_int_equal(ng_tenant_create(g_v, slug, &o, NOW), NG_OK);
}

/* Makes `to` a peer of `of` under the name `as`, from to's exported parameters. */
static void
pair(const char *of, const char *to, const char *as)
{
    char *params;

    assert_int_equal(ng_peer_export(g_v, to, "https://x.example/v1/outbox", NOW, &params, NULL), NG_OK);
    assert_int_equal(ng_peer_import(g_v, of, params, as, NOW, NULL), NG_OK);
    sodium_memzero(params, strlen(params));
    free(params);
}

static ng_directory *
load(void)
{
    ng_directory *d;

    assert_int_equal(ng_directory_load(&d, g_v), NG_OK);
    return d;
}

static void
test_empty(void **state)
{
    ng_directory *d = load();
    uint8_t id[NG_KEY_ID_BYTES] = {0}, token[32] = {0};

    (void)state;
    assert_int_equal(ng_directory_count(d), 0);
    assert_null(ng_directory_at(d, 0));
    assert_null(ng_directory_tenant(d, "acme"));
    assert_null(ng_directory_recipient(d, id, NULL));
    assert_null(ng_directory_reader(d, token, sizeof token));
    ng_directory_release(d);
}

static void
test_tenants_and_keys(void **state)
{
    const ng_dir_tenant *t, *r;
    const ng_dir_key *k;
    ng_directory *d;
    ng_keypair kp;
    uint32_t epoch;
    uint8_t sec[64];

    (void)state;
    create("zeta", 0, 0);
    create("acme", 1, 1);
    create("acme-2", 0, 1);
    assert_int_equal(ng_tenant_key_rotate(g_v, "acme", NOW, &epoch), NG_OK);
    assert_int_equal(ng_tenant_key_rotate(g_v, "acme", NOW, &epoch), NG_OK);
    assert_int_equal(ng_tenant_key_retire(g_v, "acme", 2), NG_OK);
    d = load();
    assert_int_equal(ng_directory_count(d), 3);
    /* slug order, whatever the vault's name order ("acme-2" sorts before "acme/...") */
    assert_string_equal(ng_directory_at(d, 0)->slug, "acme");
    assert_string_equal(ng_directory_at(d, 1)->slug, "acme-2");
    assert_string_equal(ng_directory_at(d, 2)->slug, "zeta");
    t = ng_directory_tenant(d, "acme");
    assert_non_null(t);
    assert_null(ng_directory_tenant(d, "acm"));
    assert_null(ng_directory_tenant(d, "acme-"));

    /* live epochs 1 and 3, ascending, the last one sealing */
    assert_int_equal(t->nkeys, 2);
    assert_int_equal(t->keys[0].epoch, 1);
    assert_int_equal(t->keys[1].epoch, 3);
    assert_int_equal(ng_tenant_keypair(g_v, "acme", 0, &kp), NG_OK);
    assert_memory_equal(t->keys[1].kp->pub, kp.pub, 32);
    assert_memory_equal(t->keys[1].kp->priv, kp.priv, 32);
    ng_keypair_wipe(&kp);
    r = ng_directory_recipient(d, t->keys[0].id, &k);
    assert_ptr_equal(r, t);
    assert_int_equal(k->epoch, 1);
    r = ng_directory_recipient(d, t->keys[1].id, &k);
    assert_ptr_equal(r, t);
    assert_int_equal(k->epoch, 3);

    /* secrets as the vault holds them */
    assert_int_equal(ng_tenant_secret(g_v, "acme", "sign", sec, 64), NG_OK);
    assert_memory_equal(t->sign_sk, sec, 64);
    assert_memory_equal(t->sign_pk, sec + 32, 32);
    assert_int_equal(ng_tenant_secret(g_v, "acme", "psk", sec, 32), NG_OK);
    assert_non_null(t->psk);
    assert_memory_equal(t->psk, sec, 32);
    assert_null(ng_directory_tenant(d, "zeta")->psk);
    assert_int_equal(t->patterns, NG_DIR_PATTERN_BIT(NG_PATTERN_XPSK1) | NG_DIR_PATTERN_BIT(NG_PATTERN_KPSK0) |
                                      NG_DIR_PATTERN_BIT(NG_PATTERN_NPSK0));
    assert_int_equal(ng_directory_tenant(d, "zeta")->patterns,
                     NG_DIR_PATTERN_BIT(NG_PATTERN_X) | NG_DIR_PATTERN_BIT(NG_PATTERN_K));
    assert_int_equal(t->max_message, 4096);
    assert_int_equal(t->rate, 10);

    /* read tokens: each finds its own tenant, a changed byte or length finds none */
    assert_int_equal(ng_tenant_secret(g_v, "zeta", "read_token", sec, 32), NG_OK);
    assert_ptr_equal(ng_directory_reader(d, sec, 32), ng_directory_tenant(d, "zeta"));
    assert_null(ng_directory_reader(d, sec, 31));
    sec[31] ^= 1;
    assert_null(ng_directory_reader(d, sec, 32));
    sodium_memzero(sec, sizeof sec);
    ng_directory_release(d);
}

static void
test_peers(void **state)
{
    const ng_dir_tenant *alice, *bob;
    const ng_dir_peer *p, *s;
    const ng_dir_peer_key *pk;
    ng_directory *d;
    uint8_t sec[32];
    uint32_t epoch;

    (void)state;
    create("alice", 0, 0);
    create("bob", 1, 0);
    assert_int_equal(ng_tenant_key_rotate(g_v, "bob", NOW, &epoch), NG_OK);
    pair("alice", "bob", "b");
    pair("bob", "alice", NULL);
    d = load();
    alice = ng_directory_tenant(d, "alice");
    bob = ng_directory_tenant(d, "bob");
    assert_int_equal(alice->npeers, 1);
    p = ng_directory_peer(alice, "b");
    assert_non_null(p);
    assert_null(ng_directory_peer(alice, "bob"));
    assert_string_equal(p->outbox, "https://x.example/v1/outbox");
    /* bob's two epochs, the newest last: alice seals to it */
    assert_int_equal(p->nkeys, 2);
    assert_memory_equal(p->keys[1].pub, bob->keys[1].kp->pub, 32);
    assert_memory_equal(p->keys[0].pub, bob->keys[0].kp->pub, 32);
    assert_memory_equal(p->signing_key, bob->sign_pk, 32);
    /* bob has a psk: alice holds it, and bob's read token, to read bob's outbox */
    assert_non_null(p->psk);
    assert_memory_equal(p->psk, bob->psk, 32);
    assert_non_null(p->read_token);
    assert_memory_equal(p->read_token, bob->read_token, 32);
    assert_int_equal(p->nprefer, 2);
    assert_int_equal(p->prefer[0], NG_PATTERN_XPSK1);
    assert_int_equal(p->prefer[1], NG_PATTERN_KPSK0);
    /* alice has no psk */
    assert_null(ng_directory_peer(bob, "alice")->psk);

    /* senders: bob's keys are alice's peer's, for alice only */
    s = ng_directory_sender(d, alice, bob->keys[0].id, &pk);
    assert_ptr_equal(s, p);
    assert_int_equal(pk->epoch, 1);
    assert_ptr_equal(ng_directory_sender(d, alice, bob->keys[1].id, NULL), p);
    assert_null(ng_directory_sender(d, bob, bob->keys[1].id, NULL));
    assert_null(ng_directory_sender(d, alice, alice->keys[0].id, NULL));
    assert_ptr_equal(ng_directory_sender(d, bob, alice->keys[0].id, NULL), ng_directory_peer(bob, "alice"));
    sodium_memzero(sec, sizeof sec);
    ng_directory_release(d);

    /* Without bob's psk, alice can seal to him in none of the psk patterns his parameters list. */
    assert_int_equal(ng_vault_delete(g_v, "tenant/alice/peer/b/psk"), NG_OK);
    d = load();
    p = ng_directory_peer(ng_directory_tenant(d, "alice"), "b");
    assert_null(p->psk);
    assert_int_equal(p->patterns, 0);
    assert_int_equal(p->nprefer, 0);
    ng_directory_release(d);
}

static void
test_backends(void **state)
{
    char id[NG_TENANT_ID_BYTES], id2[NG_TENANT_ID_BYTES], whsec[128], whsec2[128];
    uint8_t raw[64], pk[32], sk[64];
    char whpk[80], b64[64];
    const ng_dir_backend *b;
    const ng_dir_tenant *t;
    ng_directory *d;
    size_t len;

    (void)state;
    create("acme", 0, 0);
    crypto_sign_keypair(pk, sk);
    sodium_bin2base64(b64, sizeof b64, pk, sizeof pk, sodium_base64_VARIANT_ORIGINAL);
    snprintf(whpk, sizeof whpk, "whpk_%s", b64);
    assert_int_equal(ng_tenant_backend_add(g_v, "acme", "https://hook.example/in", whpk, NOW, id, whsec, sizeof whsec),
                     NG_OK);
    assert_int_equal(ng_tenant_backend_add(g_v, "acme", "http://127.0.0.1:9/x", NULL, NOW, id2, NULL, 0), NG_OK);
    d = load();
    t = ng_directory_tenant(d, "acme");
    assert_int_equal(t->nbackends, 2);
    b = ng_directory_backend(t, id);
    assert_non_null(b);
    assert_string_equal(b->url, "https://hook.example/in");
    assert_true(b->active);
    assert_true(b->has_pk);
    assert_memory_equal(b->pk, pk, 32);
    assert_int_equal(ng_webhook_secret_parse(whsec, raw, sizeof raw, &len), NG_OK);
    assert_int_equal(b->whsec_len, len);
    assert_memory_equal(b->whsec, raw, len);
    assert_null(b->whsec_prev);
    assert_false(ng_directory_backend(t, id2)->has_pk);
    assert_null(ng_directory_backend(t, "b99"));
    ng_directory_release(d);

    /* a rotation: the new secret, and the old one as prev */
    assert_int_equal(ng_tenant_backend_rotate_secret(g_v, "acme", id, NOW, whsec2, sizeof whsec2), NG_OK);
    d = load();
    b = ng_directory_backend(ng_directory_tenant(d, "acme"), id);
    assert_non_null(b->whsec_prev);
    assert_memory_equal(b->whsec_prev, raw, len);
    assert_int_equal(ng_webhook_secret_parse(whsec2, raw, sizeof raw, &len), NG_OK);
    assert_memory_equal(b->whsec, raw, len);
    sodium_memzero(raw, sizeof raw);
    sodium_memzero(sk, sizeof sk);
    ng_directory_release(d);
}

/* A holder keeps the snapshot readable after the loader lets go. */
static void
test_hold(void **state)
{
    ng_directory *d, *h;

    (void)state;
    create("acme", 0, 0);
    d = load();
    h = ng_directory_hold(d);
    assert_ptr_equal(h, d);
    ng_directory_release(d);
    assert_string_equal(ng_directory_tenant(h, "acme")->slug, "acme");
    ng_directory_release(h);
    ng_directory_release(NULL);
}

static void
put_text(const char *name, const char *text)
{
    assert_int_equal(ng_vault_put(g_v, name, (const uint8_t *)text, strlen(text)), NG_OK);
}

/* Records that are not what ng_tenant writes are refused, not half-loaded. */
static void
test_damage(void **state)
{
    static const char *const bad_records[] = {
        "{\"v\":1}",
        "{\"keys\":[],\"patterns\":[\"X\"],\"signing_public\":\"00\"}",
        "[1,2]",
        "not json",
    };
    ng_directory *d;
    json_t *rec;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad_records / sizeof *bad_records; i++) {
        create("acme", 0, 0);
        put_text("tenant/acme", bad_records[i]);
        assert_int_equal(ng_directory_load(&d, g_v), NG_ERR_CORRUPT);
        assert_null(d);
        assert_int_equal(ng_tenant_delete(g_v, "acme"), NG_OK);
    }

    /* a private key missing for a listed epoch */
    create("acme", 0, 0);
    assert_int_equal(ng_vault_delete(g_v, "tenant/acme/key/1"), NG_OK);
    assert_int_equal(ng_directory_load(&d, g_v), NG_ERR_CORRUPT);
    assert_int_equal(ng_tenant_delete(g_v, "acme"), NG_OK);

    /* an unknown pattern, and a duplicated epoch */
    create("acme", 0, 0);
    assert_int_equal(ng_tenant_get_json(g_v, "tenant/acme", &rec), NG_OK);
    json_array_append_new(json_object_get(rec, "patterns"), json_string("XX"));
    assert_int_equal(ng_tenant_put_json(g_v, "tenant/acme", rec), NG_OK);
    assert_int_equal(ng_directory_load(&d, g_v), NG_ERR_CORRUPT);
    json_array_remove(json_object_get(rec, "patterns"), json_array_size(json_object_get(rec, "patterns")) - 1);
    json_array_append(json_object_get(rec, "keys"), json_array_get(json_object_get(rec, "keys"), 0));
    assert_int_equal(ng_tenant_put_json(g_v, "tenant/acme", rec), NG_OK);
    assert_int_equal(ng_directory_load(&d, g_v), NG_ERR_CORRUPT);
    json_decref(rec);
    assert_int_equal(ng_tenant_delete(g_v, "acme"), NG_OK);

    /* a backend without its secret */
    create("acme", 0, 0);
    {
        char id[NG_TENANT_ID_BYTES];

        assert_int_equal(ng_tenant_backend_add(g_v, "acme", "https://h.example/", NULL, NOW, id, NULL, 0), NG_OK);
        assert_int_equal(ng_vault_delete(g_v, "tenant/acme/backend/b1/whsec"), NG_OK);
    }
    assert_int_equal(ng_directory_load(&d, g_v), NG_ERR_CORRUPT);
    assert_int_equal(ng_tenant_delete(g_v, "acme"), NG_OK);
    d = load();
    assert_int_equal(ng_directory_count(d), 0);
    ng_directory_release(d);
}

/* ---- end-to-end: keys the backend holds ---- */

static void
test_held_keys(void **state)
{
    uint8_t id[NG_KEY_ID_BYTES];
    const ng_dir_tenant *t, *r;
    const ng_dir_key *k;
    ng_keypair exported, backend, kp;
    ng_directory *d;
    uint32_t epoch;
    json_t *rec;

    (void)state;
    create("acme", 0, 0);
    create("zeta", 0, 0);
    assert_int_equal(ng_tenant_key_export(g_v, "acme", &epoch, &exported), NG_OK);
    ng_keypair_generate(&backend);
    assert_int_equal(ng_tenant_key_import_public(g_v, "zeta", backend.pub, NOW, &epoch), NG_OK);
    assert_int_equal(epoch, 2);
    d = load();

    /* acme: one epoch, its public key and id from the record, no private key. */
    t = ng_directory_tenant(d, "acme");
    assert_int_equal(t->nkeys, 1);
    assert_null(t->keys[0].kp);
    assert_memory_equal(t->keys[0].pub, exported.pub, NG_KEY_BYTES);
    ng_key_id(id, exported.pub);
    assert_memory_equal(t->keys[0].id, id, NG_KEY_ID_BYTES);
    r = ng_directory_recipient(d, id, &k);
    assert_ptr_equal(r, t);
    assert_ptr_equal(k, &t->keys[0]);

    /* zeta: epoch 1 the gateway's, epoch 2 (sending) the backend's. */
    t = ng_directory_tenant(d, "zeta");
    assert_int_equal(t->nkeys, 2);
    assert_non_null(t->keys[0].kp);
    assert_memory_equal(t->keys[0].pub, t->keys[0].kp->pub, NG_KEY_BYTES);
    assert_int_equal(ng_tenant_keypair(g_v, "zeta", 1, &kp), NG_OK);
    assert_memory_equal(t->keys[0].kp->priv, kp.priv, NG_KEY_BYTES);
    assert_int_equal(t->keys[1].epoch, 2);
    assert_null(t->keys[1].kp);
    assert_memory_equal(t->keys[1].pub, backend.pub, NG_KEY_BYTES);
    ng_key_id(id, backend.pub);
    assert_memory_equal(t->keys[1].id, id, NG_KEY_ID_BYTES);
    assert_ptr_equal(ng_directory_recipient(d, id, NULL), t);
    ng_directory_release(d);

    /* A gateway key that is not the record's public key is refused, not loaded as a key nobody seals to. */
    assert_int_equal(ng_tenant_get_json(g_v, "tenant/zeta", &rec), NG_OK);
    json_object_set_new(json_array_get(json_object_get(rec, "keys"), 0), "public",
                        json_string("0900000000000000000000000000000000000000000000000000000000000000"));
    assert_int_equal(ng_tenant_put_json(g_v, "tenant/zeta", rec), NG_OK);
    assert_int_equal(ng_directory_load(&d, g_v), NG_ERR_CORRUPT);
    json_decref(rec);
    ng_keypair_wipe(&exported);
    ng_keypair_wipe(&backend);
    ng_keypair_wipe(&kp);
}

static const char meta_json[] = "{\"content_type\":\"text/plain\"}";
static const char body_text[] = "for the backend's eyes only";

/* A parcel to recipient_pub (malloc'd; *len its size), created at created_ms and living ttl_ms. */
static uint8_t *
seal_to(ng_pattern pattern, const uint8_t *recipient_pub, const ng_keypair *sender, uint64_t created_ms,
        uint64_t ttl_ms, size_t *len)
{
    ng_seal_params sp;
    uint8_t *out;
    size_t size;

    memset(&sp, 0, sizeof sp);
    sp.pattern = pattern;
    sp.recipient_pub = recipient_pub;
    sp.sender = sender;
    sp.meta = (const uint8_t *)meta_json;
    sp.meta_len = strlen(meta_json);
    sp.body = (const uint8_t *)body_text;
    sp.body_len = strlen(body_text);
    sp.created_ms = created_ms;
    sp.ttl_ms = ttl_ms;
    size = ng_parcel_sealed_size(&sp);
    assert_true(size > 0);
    out = malloc(size);
    assert_non_null(out);
    assert_int_equal(ng_parcel_seal(out, size, len, &sp), NG_OK);
    return out;
}

/* Opens with a key as the backend would; the result of ng_parcel_open. */
static ng_err
backend_opens(const uint8_t *parcel, size_t len, const ng_keypair *recipient, const uint8_t *sender_pub)
{
    ng_open_params op;
    ng_opened o;
    uint8_t *buf = malloc(len);
    ng_err err;

    assert_non_null(buf);
    ng_open_params_init(&op);
    op.recipient = recipient;
    op.sender_pub = sender_pub;
    op.now_ms = (uint64_t)NOW * 1000u;
    err = ng_parcel_open(buf, len, &o, parcel, len, &op);
    if (err == NG_OK) {
        assert_int_equal(o.body_len, strlen(body_text));
        assert_memory_equal(o.body, body_text, o.body_len);
    }
    sodium_memzero(buf, len);
    free(buf);
    return err;
}

/*
 * ng_receive_check on a key the backend holds: the header's checks (recipient,
 * K sender, times) still refuse, but nothing that needs the key; the
 * gateway's ng_receive_open says why it cannot open.
 */
static void
test_receive_held(void **state)
{
    const uint64_t now = (uint64_t)NOW * 1000u, hour = 3600u * 1000u;
    uint8_t *p, *plain;
    ng_keypair bob, alice, stranger;
    const ng_dir_tenant *tb;
    ng_receive_opts o;
    ng_received r;
    ng_opened opened;
    ng_directory *d;
    size_t len, plain_len;
    uint32_t epoch;

    (void)state;
    create("alice", 0, 0);
    create("bob", 0, 1);
    pair("bob", "alice", NULL);
    assert_int_equal(ng_tenant_keypair(g_v, "alice", 0, &alice), NG_OK);
    assert_int_equal(ng_tenant_key_export(g_v, "bob", &epoch, &bob), NG_OK);
    ng_keypair_generate(&stranger);
    d = load();
    tb = ng_directory_tenant(d, "bob");
    memset(&o, 0, sizeof o);
    o.now_ms = now;
    o.skew_ms = 300000;

    /* X, K and N from alice (bob allows anonymous senders): taken in, for bob. */
    p = seal_to(NG_PATTERN_X, bob.pub, &alice, now, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_OK);
    assert_ptr_equal(r.tenant, tb);
    assert_null(r.peer); /* an X sender shows only once opened: the backend's to check */
    assert_int_equal(backend_opens(p, len, &bob, NULL), NG_OK);
    /* The gateway cannot open it, and says why: what an "opened" backend's delivery dead-letters with. */
    assert_int_equal(ng_receive_open(d, p, len, &o, &r, &opened, &plain, &plain_len), NG_ERR_KEY_ELSEWHERE);
    assert_null(plain);
    assert_int_equal(plain_len, 0);
    assert_ptr_equal(r.tenant, tb);

    /*
     * A changed body is NOT detected here: only the tag tells, and only the
     * key's holder can check it. The backend, which opens it, refuses it.
     */
    p[len - 1] ^= 1;
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_OK);
    assert_int_equal(backend_opens(p, len, &bob, NULL), NG_ERR_AUTH);
    free(p);

    p = seal_to(NG_PATTERN_K, bob.pub, &alice, now, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_OK);
    assert_non_null(r.peer);
    assert_string_equal(r.peer->name, "alice");
    /* fetched from another peer's outbox: refused by the header's sender */
    o.from_peer = "carol";
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_ERR_WRONG_SENDER);
    o.from_peer = NULL;
    free(p);

    p = seal_to(NG_PATTERN_N, bob.pub, NULL, now, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_OK);
    assert_null(r.peer);
    free(p);

    /* K from a key that is no peer's: refused on the header's sender key id. */
    p = seal_to(NG_PATTERN_K, bob.pub, &stranger, now, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_ERR_WRONG_SENDER);
    free(p);

    /* Addressed to a key no tenant has. */
    p = seal_to(NG_PATTERN_N, stranger.pub, NULL, now, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_ERR_NOT_FOUND);
    free(p);

    /* Expired, and created too far ahead. */
    p = seal_to(NG_PATTERN_N, bob.pub, NULL, now - 2 * hour, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_ERR_EXPIRED);
    free(p);
    p = seal_to(NG_PATTERN_N, bob.pub, NULL, now + hour, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_ERR_NOT_YET_VALID);
    free(p);

    /* A key the gateway holds is still opened by the check: there the changed body is refused. */
    assert_int_equal(ng_tenant_keypair(g_v, "alice", 0, &alice), NG_OK);
    pair("alice", "bob", NULL);
    ng_directory_release(d);
    d = load();
    p = seal_to(NG_PATTERN_N, alice.pub, NULL, now, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_ERR_BAD_PATTERN); /* alice takes no anonymous parcels */
    free(p);
    p = seal_to(NG_PATTERN_X, alice.pub, &bob, now, hour, &len);
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_OK);
    assert_string_equal(r.peer->name, "bob");
    p[len - 1] ^= 1;
    assert_int_equal(ng_receive_check(d, p, len, &o, &r), NG_ERR_AUTH);
    free(p);

    ng_directory_release(d);
    ng_keypair_wipe(&bob);
    ng_keypair_wipe(&alice);
    ng_keypair_wipe(&stranger);
}

#define T(t) cmocka_unit_test_setup_teardown(t, setup, teardown)

int
main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_empty), T(test_tenants_and_keys), T(test_peers),     T(test_backends),
        T(test_hold),  T(test_damage),           T(test_held_keys), T(test_receive_held),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("directory", tests, NULL, NULL);
}

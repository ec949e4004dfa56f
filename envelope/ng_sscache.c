#include "ng_sscache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

enum { WAYS = 4 };

struct entry {
    uint8_t local[NG_KEY_BYTES];
    uint8_t remote[NG_KEY_BYTES];
    uint8_t ss[NG_DH_BYTES];
    uint64_t last_used; /* 0: empty slot */
};

struct ng_ss_cache {
    pthread_mutex_t lock;
    struct entry *entries; /* sodium_malloc'd: sets * WAYS entries */
    size_t sets;
    uint64_t tick;
    uint64_t hits, misses;
    /* Random key so that a peer cannot choose keys that all land in one set. */
    uint8_t index_key[crypto_shorthash_KEYBYTES];
};

ng_err
ng_ss_cache_new(ng_ss_cache **out, size_t capacity)
{
    ng_ss_cache *c;
    size_t sets = (capacity + WAYS - 1) / WAYS;

    *out = NULL;
    if (sets == 0)
        sets = 1;
    if (sets > SIZE_MAX / WAYS / sizeof(struct entry))
        return NG_ERR_TOO_LARGE;
    c = calloc(1, sizeof *c);
    if (c == NULL)
        return NG_ERR_NOMEM;
    c->entries = sodium_malloc(sets * WAYS * sizeof(struct entry));
    if (c->entries == NULL || pthread_mutex_init(&c->lock, NULL) != 0) {
        sodium_free(c->entries);
        free(c);
        return NG_ERR_NOMEM;
    }
    memset(c->entries, 0, sets * WAYS * sizeof(struct entry));
    c->sets = sets;
    randombytes_buf(c->index_key, sizeof c->index_key);
    *out = c;
    return NG_OK;
}

void
ng_ss_cache_free(ng_ss_cache *c)
{
    if (c == NULL)
        return;
    sodium_free(c->entries); /* sodium_free wipes before it unmaps */
    pthread_mutex_destroy(&c->lock);
    sodium_memzero(c, sizeof *c);
    free(c);
}

static struct entry *
set_of(ng_ss_cache *c, const uint8_t *local, const uint8_t *remote)
{
    uint8_t pair[2 * NG_KEY_BYTES];
    uint8_t h[crypto_shorthash_BYTES];
    uint64_t v = 0;
    int i;

    memcpy(pair, local, NG_KEY_BYTES);
    memcpy(pair + NG_KEY_BYTES, remote, NG_KEY_BYTES);
    crypto_shorthash(h, pair, sizeof pair, c->index_key);
    for (i = 0; i < 8; i++)
        v = (v << 8) | h[i];
    return &c->entries[(v % c->sets) * WAYS];
}

static struct entry *
find(struct entry *set, const uint8_t *local, const uint8_t *remote)
{
    int i;

    for (i = 0; i < WAYS; i++)
        if (set[i].last_used != 0 && memcmp(set[i].local, local, NG_KEY_BYTES) == 0 &&
            memcmp(set[i].remote, remote, NG_KEY_BYTES) == 0)
            return &set[i];
    return NULL;
}

int
ng_ss_cache_lookup(ng_ss_cache *c, uint8_t out[NG_DH_BYTES], const uint8_t local_pub[NG_KEY_BYTES],
                   const uint8_t remote_pub[NG_KEY_BYTES])
{
    struct entry *e;

    if (c == NULL)
        return 0;
    pthread_mutex_lock(&c->lock);
    e = find(set_of(c, local_pub, remote_pub), local_pub, remote_pub);
    if (e != NULL) {
        memcpy(out, e->ss, NG_DH_BYTES);
        e->last_used = ++c->tick;
        c->hits++;
    } else {
        c->misses++;
    }
    pthread_mutex_unlock(&c->lock);
    return e != NULL;
}

void
ng_ss_cache_insert(ng_ss_cache *c, const uint8_t local_pub[NG_KEY_BYTES], const uint8_t remote_pub[NG_KEY_BYTES],
                   const uint8_t ss[NG_DH_BYTES])
{
    struct entry *set, *victim;
    int i;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    set = set_of(c, local_pub, remote_pub);
    /* Two threads may both have missed and computed the same entry: the
     * second insert refreshes it instead of taking a second slot. */
    victim = find(set, local_pub, remote_pub);
    if (victim == NULL) {
        victim = &set[0];
        for (i = 1; i < WAYS; i++)
            if (set[i].last_used < victim->last_used)
                victim = &set[i];
    }
    sodium_memzero(victim, sizeof *victim);
    memcpy(victim->local, local_pub, NG_KEY_BYTES);
    memcpy(victim->remote, remote_pub, NG_KEY_BYTES);
    memcpy(victim->ss, ss, NG_DH_BYTES);
    victim->last_used = ++c->tick;
    pthread_mutex_unlock(&c->lock);
}

ng_err
ng_ss_cache_dh(ng_ss_cache *c, uint8_t out[NG_DH_BYTES], const ng_keypair *local,
               const uint8_t remote_pub[NG_KEY_BYTES])
{
    ng_err err;

    if (ng_ss_cache_lookup(c, out, local->pub, remote_pub))
        return NG_OK;
    /* The DH runs unlocked. */
    err = ng_dh(out, local->priv, remote_pub);
    if (err == NG_OK)
        ng_ss_cache_insert(c, local->pub, remote_pub, out);
    return err;
}

void
ng_ss_cache_forget(ng_ss_cache *c, const uint8_t pub[NG_KEY_BYTES])
{
    size_t i;

    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    for (i = 0; i < c->sets * WAYS; i++) {
        struct entry *e = &c->entries[i];
        if (e->last_used != 0 &&
            (memcmp(e->local, pub, NG_KEY_BYTES) == 0 || memcmp(e->remote, pub, NG_KEY_BYTES) == 0))
            sodium_memzero(e, sizeof *e);
    }
    pthread_mutex_unlock(&c->lock);
}

void
ng_ss_cache_stats(ng_ss_cache *c, uint64_t *hits, uint64_t *misses)
{
    *hits = *misses = 0;
    if (c == NULL)
        return;
    pthread_mutex_lock(&c->lock);
    *hits = c->hits;
    *misses = c->misses;
    pthread_mutex_unlock(&c->lock);
}

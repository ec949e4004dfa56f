/*
 * Vault file, version 1 (integers big-endian):
 *
 *   0   4  magic "NGV1"            40  4  entry count
 *   4   1  kdf: 0 raw key,         44 20  zero
 *          1 Argon2id passphrase   64 40  check: nonce || tag of "" (AD: check label)
 *   5   3  zero                    104 …  entries: u16 name_len, name, u32 blob_len,
 *   8   8  Argon2id opslimit               blob = nonce(24) || ciphertext || tag
 *  16   8  Argon2id memlimit       end-32  BLAKE2b-256 MAC, keyed, over all before it
 *  24  16  salt
 *
 * Subkeys come from the master key with crypto_kdf: 1 seals entries, 2 keys
 * the MAC. The check entry tells a wrong master key from a damaged file.
 */
#include "ng_vault.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ng_vault_store.h"

enum {
    HEADER_BYTES = 64,
    NONCE = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES,
    TAG = crypto_aead_xchacha20poly1305_ietf_ABYTES,
    CHECK_BYTES = NONCE + TAG,
    MAC_BYTES = 32,
    SALT_BYTES = 16,
    KDF_RAW = 0,
    KDF_ARGON2ID = 1,
    UPDATE_ATTEMPTS = 64,
};

#define MAX_FILE     ((size_t)256 * 1024 * 1024)
#define MAX_OPSLIMIT 16u
#define MAX_MEMLIMIT ((uint64_t)4 * 1024 * 1024 * 1024)

_Static_assert(SALT_BYTES == crypto_pwhash_SALTBYTES, "Argon2id salt size");

static const char kdf_context[crypto_kdf_CONTEXTBYTES + 1] = "ngvault1";
static const char check_label[] = "noisegate-vault-check-v1";

struct keys {
    uint8_t entry[32];
    uint8_t mac[32];
};

struct entry {
    char name[NG_VAULT_MAX_NAME + 1];
    size_t off; /* of the value in the arena */
    size_t len;
};

/*
 * Every value lives in one sodium_malloc arena, PROT_NONE while idle: a
 * region per value would cost three pages and two guard mappings each
 * (about 8 KiB of resident memory per entry, 430 MB for 50,000 entries).
 * A replaced or deleted value is wiped where it lies; the hole is
 * reclaimed when the arena is compacted.
 */
struct arena {
    uint8_t *mem;
    size_t cap, used, garbage;
    int open; /* left writable for a bulk load: mprotect costs in proportion to the arena */
};

/*
 * Opening the whole arena for one value would cost an mprotect over all of
 * it, in proportion to the vault; only the pages under the value are
 * opened and closed again. They lie inside the region sodium_malloc
 * mapped for the arena, which sodium_free unprotects whole before it
 * wipes.
 */
static void
arena_protect(struct arena *a, size_t off, size_t len, int prot)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), start, end;

    if (a->mem == NULL || a->open || len == 0)
        return;
    start = ((uintptr_t)(a->mem + off)) & ~(page - 1);
    end = ((uintptr_t)(a->mem + off + len) + page - 1) & ~(page - 1);
    mprotect((void *)start, end - start, prot);
}

/* The whole arena, for what goes over every value (compaction, sealing). */
static void
arena_lock(struct arena *a)
{
    if (a->mem != NULL && !a->open)
        sodium_mprotect_noaccess(a->mem);
}

static void
arena_unlock(struct arena *a, int write)
{
    if (a->mem != NULL && !a->open) {
        if (write)
            sodium_mprotect_readwrite(a->mem);
        else
            sodium_mprotect_readonly(a->mem);
    }
}

struct ng_vault {
    struct keys *keys; /* sodium_malloc, PROT_NONE while idle */
    struct arena values;
    struct entry *entries;
    size_t n, cap;
    uint8_t kdf;
    uint64_t opslimit, memlimit;
    uint8_t salt[SALT_BYTES];
};

static void
put_be(uint8_t *p, uint64_t v, int bytes)
{
    int i;

    for (i = bytes - 1; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t
get_be(const uint8_t *p, int bytes)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < bytes; i++)
        v = (v << 8) | p[i];
    return v;
}

static int
name_ok(const char *name)
{
    size_t i, len = strlen(name);

    if (len == 0 || len > NG_VAULT_MAX_NAME)
        return 0;
    for (i = 0; i < len; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == ':' || c == '/'))
            return 0;
    }
    return 1;
}

static ng_vault *
vault_new(void)
{
    ng_vault *v = calloc(1, sizeof *v);

    if (v == NULL)
        return NULL;
    v->keys = sodium_malloc(sizeof *v->keys);
    if (v->keys == NULL) {
        free(v);
        return NULL;
    }
    return v;
}

void
ng_vault_close(ng_vault *v)
{
    if (v == NULL)
        return;
    sodium_free(v->values.mem); /* wipes before unmapping */
    free(v->entries);
    sodium_free(v->keys);
    sodium_memzero(v, sizeof *v);
    free(v);
}

static int
secret_ok(const ng_vault_secret *s)
{
    return s != NULL && s->data != NULL && (s->passphrase || s->len == NG_VAULT_KEY_BYTES);
}

/* Fills v->keys from the secret and the kdf parameters in v. */
static ng_err
derive_keys(ng_vault *v, const ng_vault_secret *s)
{
    uint8_t master[NG_VAULT_KEY_BYTES];

    if ((v->kdf == KDF_ARGON2ID) != (s->passphrase != 0))
        return NG_ERR_VAULT_KEY;
    if (!secret_ok(s))
        return NG_ERR_INVALID_ARG;
    if (v->kdf == KDF_RAW) {
        memcpy(master, s->data, sizeof master);
    } else if (crypto_pwhash(master, sizeof master, (const char *)s->data, s->len, v->salt, v->opslimit,
                             (size_t)v->memlimit, crypto_pwhash_ALG_ARGON2ID13) != 0) {
        sodium_memzero(master, sizeof master); /* may hold a partial result */
        return NG_ERR_NOMEM;
    }
    sodium_mprotect_readwrite(v->keys);
    crypto_kdf_derive_from_key(v->keys->entry, sizeof v->keys->entry, 1, kdf_context, master);
    crypto_kdf_derive_from_key(v->keys->mac, sizeof v->keys->mac, 2, kdf_context, master);
    sodium_mprotect_noaccess(v->keys);
    sodium_memzero(master, sizeof master);
    return NG_OK;
}

/* Seals value under the entry key with ad; out gets NONCE + len + TAG bytes. */
static void
seal(const ng_vault *v, uint8_t *out, const char *ad, const uint8_t *value, size_t len)
{
    randombytes_buf(out, NONCE);
    sodium_mprotect_readonly(v->keys);
    crypto_aead_xchacha20poly1305_ietf_encrypt(out + NONCE, NULL, value, len, (const uint8_t *)ad, strlen(ad), NULL,
                                               out, v->keys->entry);
    sodium_mprotect_noaccess(v->keys);
}

static int
unseal(const ng_vault *v, uint8_t *out, const char *ad, const uint8_t *blob, size_t blob_len)
{
    int rc;

    sodium_mprotect_readonly(v->keys);
    rc = crypto_aead_xchacha20poly1305_ietf_decrypt(out, NULL, NULL, blob + NONCE, blob_len - NONCE,
                                                    (const uint8_t *)ad, strlen(ad), blob, v->keys->entry);
    sodium_mprotect_noaccess(v->keys);
    return rc;
}

static void
mac(const ng_vault *v, uint8_t out[MAC_BYTES], const uint8_t *buf, size_t len)
{
    sodium_mprotect_readonly(v->keys);
    crypto_generichash(out, MAC_BYTES, buf, len, v->keys->mac, sizeof v->keys->mac);
    sodium_mprotect_noaccess(v->keys);
}

static size_t
find(const ng_vault *v, const char *name, int *found)
{
    size_t lo = 0, hi = v->n;

    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(v->entries[mid].name, name);
        if (c == 0) {
            *found = 1;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = 0;
    return lo;
}

/*
 * Moves the live values into a new arena of at least need bytes beyond
 * them, dropping the holes; the old arena is wiped as it is freed.
 */
static ng_err
arena_grow(ng_vault *v, size_t need)
{
    size_t live = v->values.used - v->values.garbage, cap = 4096, i, at = 0;
    uint8_t *mem;

    while (cap < 2 * (live + need))
        cap *= 2;
    mem = sodium_malloc(cap);
    if (mem == NULL)
        return NG_ERR_NOMEM;
    arena_unlock(&v->values, 0);
    for (i = 0; i < v->n; i++) {
        memcpy(mem + at, v->values.mem + v->entries[i].off, v->entries[i].len);
        v->entries[i].off = at;
        at += v->entries[i].len;
    }
    sodium_free(v->values.mem);
    if (!v->values.open)
        sodium_mprotect_noaccess(mem);
    v->values.mem = mem;
    v->values.cap = cap;
    v->values.used = at;
    v->values.garbage = 0;
    return NG_OK;
}

/* Wipes a value that is no longer referenced and counts it as a hole. */
static void
arena_drop(ng_vault *v, const struct entry *e)
{
    if (e->len == 0)
        return;
    arena_protect(&v->values, e->off, e->len, PROT_READ | PROT_WRITE);
    sodium_memzero(v->values.mem + e->off, e->len);
    arena_protect(&v->values, e->off, e->len, PROT_NONE);
    v->values.garbage += e->len;
}

ng_err
ng_vault_put(ng_vault *v, const char *name, const uint8_t *value, size_t len)
{
    struct entry *e;
    size_t at;
    int found;
    ng_err err;

    if (!name_ok(name) || len > NG_VAULT_MAX_VALUE || (len > 0 && value == NULL))
        return NG_ERR_INVALID_ARG;
    at = find(v, name, &found);
    if (!found && v->n == NG_VAULT_MAX_ENTRIES)
        return NG_ERR_TOO_LARGE;
    if (!found && v->n == v->cap) {
        size_t cap = v->cap ? v->cap * 2 : 16;
        struct entry *more = realloc(v->entries, cap * sizeof *more);
        if (more == NULL)
            return NG_ERR_NOMEM;
        v->entries = more;
        v->cap = cap;
    }
    if (found)
        arena_drop(v, &v->entries[at]);
    /* Full, or more holes than values: compact (before the new entry exists, so it is not copied). */
    if (v->values.used + len > v->values.cap || v->values.garbage > v->values.used / 2) {
        err = arena_grow(v, len);
        if (err)
            return err;
    }
    if (!found) {
        memmove(&v->entries[at + 1], &v->entries[at], (v->n - at) * sizeof *v->entries);
        v->n++;
        e = &v->entries[at];
        memset(e, 0, sizeof *e);
        memcpy(e->name, name, strlen(name) + 1);
    }
    e = &v->entries[at];
    e->off = v->values.used;
    e->len = len;
    if (len > 0) {
        arena_protect(&v->values, e->off, len, PROT_READ | PROT_WRITE);
        memcpy(v->values.mem + e->off, value, len);
        arena_protect(&v->values, e->off, len, PROT_NONE);
    }
    v->values.used += len;
    return NG_OK;
}

ng_err
ng_vault_get(ng_vault *v, const char *name, uint8_t *out, size_t cap, size_t *len)
{
    struct entry *e;
    size_t at;
    int found;

    *len = 0;
    at = find(v, name, &found);
    if (!found)
        return NG_ERR_NOT_FOUND;
    e = &v->entries[at];
    if (cap < e->len) {
        *len = e->len; /* what it takes, so a caller can size its buffer */
        return NG_ERR_BUFFER_TOO_SMALL;
    }
    if (e->len > 0) {
        arena_protect(&v->values, e->off, e->len, PROT_READ);
        memcpy(out, v->values.mem + e->off, e->len);
        arena_protect(&v->values, e->off, e->len, PROT_NONE);
    }
    *len = e->len;
    return NG_OK;
}

ng_err
ng_vault_delete(ng_vault *v, const char *name)
{
    size_t at;
    int found;

    at = find(v, name, &found);
    if (!found)
        return NG_ERR_NOT_FOUND;
    arena_drop(v, &v->entries[at]);
    memmove(&v->entries[at], &v->entries[at + 1], (v->n - at - 1) * sizeof *v->entries);
    v->n--;
    return NG_OK;
}

size_t
ng_vault_lower_bound(const ng_vault *v, const char *name)
{
    int found;

    return find(v, name, &found);
}

size_t
ng_vault_count(const ng_vault *v)
{
    return v->n;
}

const char *
ng_vault_name(const ng_vault *v, size_t i)
{
    return i < v->n ? v->entries[i].name : NULL;
}

/* The whole file, freshly sealed; *out is malloc'd (ciphertext only). */
static ng_err
serialize(const ng_vault *v, uint8_t **out, size_t *out_len)
{
    size_t size = HEADER_BYTES + CHECK_BYTES + MAC_BYTES, i;
    uint8_t *buf, *w;

    for (i = 0; i < v->n; i++)
        size += 2 + strlen(v->entries[i].name) + 4 + NONCE + v->entries[i].len + TAG;
    buf = calloc(1, size);
    if (buf == NULL)
        return NG_ERR_NOMEM;
    memcpy(buf, "NGV1", 4);
    buf[4] = v->kdf;
    put_be(buf + 8, v->opslimit, 8);
    put_be(buf + 16, v->memlimit, 8);
    memcpy(buf + 24, v->salt, SALT_BYTES);
    put_be(buf + 40, v->n, 4);
    seal(v, buf + HEADER_BYTES, check_label, NULL, 0);
    w = buf + HEADER_BYTES + CHECK_BYTES;
    arena_unlock((struct arena *)&v->values, 0);
    for (i = 0; i < v->n; i++) {
        const struct entry *e = &v->entries[i];
        size_t nlen = strlen(e->name);

        put_be(w, nlen, 2);
        memcpy(w + 2, e->name, nlen);
        w += 2 + nlen;
        put_be(w, NONCE + e->len + TAG, 4);
        w += 4;
        seal(v, w, e->name, v->values.mem + e->off, e->len);
        w += NONCE + e->len + TAG;
    }
    arena_lock((struct arena *)&v->values);
    mac(v, w, buf, (size_t)(w - buf));
    *out = buf;
    *out_len = size;
    return NG_OK;
}

/*
 * Keys an update derived from a passphrase, kept for its retries: Argon2id
 * costs about a second and a quarter of a GiB, and a retry reads a vault
 * with the same salt and limits.
 */
struct derived {
    int valid;
    uint64_t opslimit, memlimit;
    uint8_t salt[SALT_BYTES];
    struct keys keys;
};

/* derive_keys, or the keys in cache when they were derived for the same parameters. */
static ng_err
keys_for(ng_vault *v, const ng_vault_secret *s, struct derived *cache)
{
    ng_err err;

    if (cache != NULL && cache->valid && v->kdf == KDF_ARGON2ID && cache->opslimit == v->opslimit &&
        cache->memlimit == v->memlimit && sodium_memcmp(cache->salt, v->salt, SALT_BYTES) == 0) {
        sodium_mprotect_readwrite(v->keys);
        memcpy(v->keys, &cache->keys, sizeof cache->keys);
        sodium_mprotect_noaccess(v->keys);
        return NG_OK;
    }
    err = derive_keys(v, s);
    if (err == NG_OK && cache != NULL && v->kdf == KDF_ARGON2ID) {
        sodium_mprotect_readonly(v->keys);
        memcpy(&cache->keys, v->keys, sizeof cache->keys);
        sodium_mprotect_noaccess(v->keys);
        cache->opslimit = v->opslimit;
        cache->memlimit = v->memlimit;
        memcpy(cache->salt, v->salt, SALT_BYTES);
        cache->valid = 1;
    }
    return err;
}

static ng_err
parse(ng_vault *v, const uint8_t *buf, size_t len, const ng_vault_secret *s, struct derived *cache)
{
    uint8_t want[MAC_BYTES], empty[1], *plain;
    const uint8_t *r, *end;
    uint64_t count, i;
    ng_err err;

    if (len < HEADER_BYTES + CHECK_BYTES + MAC_BYTES || memcmp(buf, "NGV1", 4) != 0)
        return NG_ERR_CORRUPT;
    v->kdf = buf[4];
    v->opslimit = get_be(buf + 8, 8);
    v->memlimit = get_be(buf + 16, 8);
    memcpy(v->salt, buf + 24, SALT_BYTES);
    count = get_be(buf + 40, 4);
    if (v->kdf > KDF_ARGON2ID || !sodium_is_zero(buf + 5, 3) || !sodium_is_zero(buf + 44, 20) ||
        count > NG_VAULT_MAX_ENTRIES)
        return NG_ERR_CORRUPT;
    /* Limits come from the file: bound them before spending memory on them. */
    if (v->kdf == KDF_ARGON2ID && (v->opslimit < crypto_pwhash_OPSLIMIT_MIN || v->opslimit > MAX_OPSLIMIT ||
                                   v->memlimit < crypto_pwhash_MEMLIMIT_MIN || v->memlimit > MAX_MEMLIMIT))
        return NG_ERR_CORRUPT;
    if (v->kdf == KDF_RAW && (v->opslimit != 0 || v->memlimit != 0 || !sodium_is_zero(v->salt, SALT_BYTES)))
        return NG_ERR_CORRUPT;
    err = keys_for(v, s, cache);
    if (err)
        return err;
    if (unseal(v, empty, check_label, buf + HEADER_BYTES, CHECK_BYTES) != 0)
        return NG_ERR_VAULT_KEY;
    mac(v, want, buf, len - MAC_BYTES);
    if (sodium_memcmp(want, buf + len - MAC_BYTES, MAC_BYTES) != 0)
        return NG_ERR_CORRUPT;

    r = buf + HEADER_BYTES + CHECK_BYTES;
    end = buf + len - MAC_BYTES;
    /* One buffer for every entry's plaintext, wiped as it is freed. */
    plain = sodium_malloc(NG_VAULT_MAX_VALUE + 1);
    if (plain == NULL)
        return NG_ERR_NOMEM;
    v->values.open = 1;
    for (i = 0; i < count && err == NG_OK; i++) {
        char name[NG_VAULT_MAX_NAME + 1];
        size_t nlen, blen;

        if (end - r < 2 || (nlen = get_be(r, 2)) == 0 || nlen > NG_VAULT_MAX_NAME || (size_t)(end - r) < 2 + nlen + 4) {
            err = NG_ERR_CORRUPT;
            break;
        }
        memcpy(name, r + 2, nlen);
        name[nlen] = '\0';
        r += 2 + nlen;
        blen = get_be(r, 4);
        r += 4;
        if (blen < NONCE + TAG || blen - NONCE - TAG > NG_VAULT_MAX_VALUE || (size_t)(end - r) < blen ||
            !name_ok(name) || (v->n > 0 && strcmp(v->entries[v->n - 1].name, name) >= 0))
            err = NG_ERR_CORRUPT;
        else if (unseal(v, plain, name, r, blen) != 0)
            err = NG_ERR_CORRUPT;
        else
            err = ng_vault_put(v, name, plain, blen - NONCE - TAG);
        r += blen;
    }
    sodium_free(plain);
    v->values.open = 0;
    arena_lock(&v->values);
    if (err)
        return err;
    return r == end ? NG_OK : NG_ERR_CORRUPT;
}

static ng_err
load(ng_vault **out, ng_vault_store *st, const ng_vault_secret *s, struct derived *cache)
{
    ng_vault *v;
    uint8_t *buf;
    size_t len;
    ng_err err;

    *out = NULL;
    if (!secret_ok(s))
        return NG_ERR_INVALID_ARG;
    err = st->ops->read(st, MAX_FILE, &buf, &len);
    if (err)
        return err;
    v = vault_new();
    err = v == NULL ? NG_ERR_NOMEM : parse(v, buf, len, s, cache);
    free(buf);
    if (err) {
        ng_vault_close(v);
        return err;
    }
    *out = v;
    return NG_OK;
}

ng_err
ng_vault_open(ng_vault **out, ng_vault_store *store, const ng_vault_secret *secret)
{
    return load(out, store, secret, NULL);
}

static ng_err
store(const ng_vault *v, ng_vault_store *st, int create)
{
    uint8_t *buf;
    size_t len;
    ng_err err = serialize(v, &buf, &len);

    if (err)
        return err;
    err = st->ops->write(st, buf, len, create);
    free(buf);
    return err;
}

/* Sets kdf parameters (and a fresh salt) for a vault sealed with s. */
static void
set_kdf(ng_vault *v, const ng_vault_secret *s)
{
    v->kdf = s->passphrase ? KDF_ARGON2ID : KDF_RAW;
    v->opslimit = v->memlimit = 0;
    memset(v->salt, 0, sizeof v->salt);
    if (s->passphrase) {
        v->opslimit = s->opslimit ? s->opslimit : crypto_pwhash_OPSLIMIT_MODERATE;
        v->memlimit = s->memlimit ? s->memlimit : crypto_pwhash_MEMLIMIT_MODERATE;
        randombytes_buf(v->salt, sizeof v->salt);
    }
}

ng_err
ng_vault_create(ng_vault_store *st, const ng_vault_secret *secret)
{
    ng_vault *v;
    ng_err err;

    if (!secret_ok(secret))
        return NG_ERR_INVALID_ARG;
    v = vault_new();
    if (v == NULL)
        return NG_ERR_NOMEM;
    set_kdf(v, secret);
    err = derive_keys(v, secret);
    if (err == NG_OK)
        err = st->ops->begin(st);
    if (err == NG_OK) {
        err = store(v, st, 1);
        st->ops->end(st);
    }
    ng_vault_close(v);
    return err;
}

/* A short pause that grows with the attempt and is jittered, so that racing writers spread out. */
static void
back_off(unsigned attempt)
{
    struct timespec ts = {0, 0};
    uint32_t ms = 1 + randombytes_uniform(2u << (attempt < 6 ? attempt : 6));

    ts.tv_nsec = (long)ms * 1000000L;
    nanosleep(&ts, NULL);
}

ng_err
ng_vault_update(ng_vault_store *st, const ng_vault_secret *secret, ng_vault_update_fn fn, void *ctx)
{
    struct derived *cache = sodium_malloc(sizeof *cache);
    unsigned attempt;
    ng_err err = NG_ERR_CONFLICT;

    if (cache == NULL)
        return NG_ERR_NOMEM;
    cache->valid = 0;
    for (attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
        ng_vault *v = NULL;

        if (attempt > 0)
            back_off(attempt);
        err = st->ops->begin(st);
        if (err)
            break;
        err = load(&v, st, secret, cache);
        if (err == NG_OK)
            err = fn(v, ctx);
        if (err == NG_OK)
            err = store(v, st, 0);
        st->ops->end(st);
        ng_vault_close(v);
        if (err != NG_ERR_CONFLICT)
            break;
    }
    sodium_free(cache); /* wipes */
    return err;
}

/* Rekeying is an update whose only change is the key: fresh kdf
 * parameters, fresh subkeys; store() then reseals every entry under them. */
static ng_err
switch_key(ng_vault *v, void *ctx)
{
    const ng_vault_secret *new_secret = ctx;

    set_kdf(v, new_secret);
    return derive_keys(v, new_secret);
}

ng_err
ng_vault_rekey(ng_vault_store *st, const ng_vault_secret *old_secret, const ng_vault_secret *new_secret)
{
    if (!secret_ok(new_secret))
        return NG_ERR_INVALID_ARG;
    return ng_vault_update(st, old_secret, switch_key, (void *)new_secret);
}

/*
 * ng_vault_store.h: where a sealed vault lives. The vault is one sealed
 * blob (see ng_vault.c); a store only keeps those bytes and arbitrates
 * between writers. Two forms:
 *
 *   file   the default. Writers serialise on an fcntl lock on "<path>.lock"
 *          and replace the file atomically (temp file, fsync, rename, fsync
 *          of the directory): a reader sees the old or the new state, and a
 *          killed writer leaves the old one.
 *   redis  one string key, so several gateway processes on one Redis share
 *          the same tenants. Writers are optimistic (WATCH, MULTI, EXEC): a
 *          write that raced another is refused with NG_ERR_CONFLICT and
 *          ng_vault_update runs again on the newer state.
 *
 * The ops table is what a new form implements; callers use the ng_vault_*
 * functions of ng_vault.h. THREAD SAFETY: a store is used by one thread.
 */
#ifndef NG_VAULT_STORE_H
#define NG_VAULT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

typedef struct ng_vault_store ng_vault_store;

struct ng_vault_store_ops {
    /* Starts a read-modify-write: takes the lock, or watches the key. */
    ng_err (*begin)(ng_vault_store *s);
    /* The stored bytes, malloc'd (at most max); NG_ERR_NOT_FOUND if there is no vault. */
    ng_err (*read)(ng_vault_store *s, size_t max, uint8_t **buf, size_t *len);
    /*
     * Stores the bytes atomically. create: NG_ERR_EXISTS if a vault is
     * there. Otherwise NG_ERR_CONFLICT if it changed since begin.
     */
    ng_err (*write)(ng_vault_store *s, const uint8_t *buf, size_t len, int create);
    /* Ends what begin started; always called after a successful begin. */
    void (*end)(ng_vault_store *s);
    void (*destroy)(ng_vault_store *s);
    /* The last NG_VAULT_STORE_STAMP_BYTES of the stored bytes (see ng_vault_store_stamp). */
    ng_err (*stamp)(ng_vault_store *s, uint8_t *out);
};

/* Every store starts with this; the form's own fields follow. */
struct ng_vault_store {
    const struct ng_vault_store_ops *ops;
    char where[320]; /* for messages: the path, or the Redis key and URL */
};

/* The file form at path (its lock file is "<path>.lock"). */
NG_MUST_CHECK ng_err ng_vault_store_file(ng_vault_store **out, const char *path);

/*
 * The Redis form: the vault is the string at key on the server at url (see
 * ng_redis.h). Connects now: NG_ERR_UNAVAILABLE if Redis does not answer.
 */
NG_MUST_CHECK ng_err ng_vault_store_redis(ng_vault_store **out, const char *url, const char *key, int timeout_ms);

enum { NG_VAULT_STORE_STAMP_BYTES = 32 };

/*
 * What identifies the stored version without reading it whole: the vault's
 * MAC, which every write changes. A running gateway compares stamps to
 * notice that an operator changed the vault. NG_ERR_NOT_FOUND if there is
 * no vault, NG_ERR_CORRUPT if it is shorter than a stamp.
 */
NG_MUST_CHECK ng_err ng_vault_store_stamp(ng_vault_store *s, uint8_t out[NG_VAULT_STORE_STAMP_BYTES]);

/* A short description for messages ("vault file /x/vault.ngv"); no secrets. */
const char *ng_vault_store_where(const ng_vault_store *s);

/* NULL is a no-op. */
void ng_vault_store_free(ng_vault_store *s);

#endif

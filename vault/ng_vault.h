/*
 * ng_vault.h: the sealed key store.
 *
 * A vault is a set of named secrets (Noise static keys, signing keys, psks,
 * tokens). At rest each entry is sealed with XChaCha20-Poly1305 under a key
 * derived from the master key, with the entry's name as associated data, so
 * entries cannot be swapped or renamed; the whole file carries a keyed
 * BLAKE2b MAC as well, so entries cannot be dropped, duplicated or replaced
 * by those of another file, and any changed byte is refused. The master key
 * is 32 random bytes (a key file, or NOISEGATE_VAULT_KEY), or comes from a
 * passphrase through Argon2id with the salt and limits stored in the file.
 *
 * In memory all values live in one sodium_malloc arena, kept PROT_NONE
 * except while a value is copied in or out, and wiped when a value is
 * replaced or deleted and when the vault is closed.
 *
 * The sealed bytes live in a store (ng_vault_store.h: a file, or a key in
 * Redis) that makes every write atomic and arbitrates between writers, so
 * a reader sees the old or the new state and a killed writer leaves the
 * old one. THREAD SAFETY: an ng_vault handle is not shared between threads.
 */
#ifndef NG_VAULT_H
#define NG_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"
#include "ng_vault_store.h"

enum {
    NG_VAULT_KEY_BYTES = 32,
    NG_VAULT_MAX_NAME = 255,
    NG_VAULT_MAX_VALUE = 64 * 1024,
    NG_VAULT_MAX_ENTRIES = 100000,
};

typedef struct ng_vault ng_vault;

/* Where the master key comes from. */
typedef struct ng_vault_secret {
    int passphrase; /* 0: data is the 32-byte master key; 1: a passphrase */
    const uint8_t *data;
    size_t len;
    /* Argon2id limits for a vault created or rekeyed with a passphrase;
     * 0 means libsodium's "moderate" limits. Opening reads them from the file. */
    uint64_t opslimit;
    uint64_t memlimit;
} ng_vault_secret;

/* Creates an empty vault in the store; NG_ERR_EXISTS if one is there. */
NG_MUST_CHECK ng_err ng_vault_create(ng_vault_store *store, const ng_vault_secret *secret);

/*
 * Opens and verifies the whole vault. NG_ERR_VAULT_KEY for a wrong master
 * key or passphrase, NG_ERR_CORRUPT for any other changed, missing or extra
 * byte, NG_ERR_NOT_FOUND if there is no vault, NG_ERR_IO or
 * NG_ERR_UNAVAILABLE if it cannot be read.
 */
NG_MUST_CHECK ng_err ng_vault_open(ng_vault **out, ng_vault_store *store, const ng_vault_secret *secret);
/* Wipes every secret and frees; NULL is a no-op. */
void ng_vault_close(ng_vault *v);

/*
 * Copies the value of name into out (cap bytes). NG_ERR_NOT_FOUND, or
 * NG_ERR_BUFFER_TOO_SMALL with the value's length in *len.
 */
NG_MUST_CHECK ng_err ng_vault_get(ng_vault *v, const char *name, uint8_t *out, size_t cap, size_t *len);
/* Adds or replaces an entry in memory (ng_vault_update writes it). */
NG_MUST_CHECK ng_err ng_vault_put(ng_vault *v, const char *name, const uint8_t *value, size_t len);
NG_MUST_CHECK ng_err ng_vault_delete(ng_vault *v, const char *name);
size_t ng_vault_count(const ng_vault *v);
/* The name of entry i (0 <= i < count), in name order. */
const char *ng_vault_name(const ng_vault *v, size_t i);
/*
 * The index of the first entry whose name is not below name (count if
 * none): with names in order, the entries that start with a prefix are
 * the run from ng_vault_lower_bound(v, prefix), found in O(log n).
 */
size_t ng_vault_lower_bound(const ng_vault *v, const char *name);

/*
 * Read-modify-write: opens the current vault, calls fn, and if it returns
 * NG_OK writes the result atomically. fn's error is returned unchanged and
 * nothing is written. When another writer got in first (Redis form) the
 * whole cycle runs again on the newer vault, so fn may run more than once:
 * it must act only on v and ctx, and decide again each time.
 */
typedef ng_err (*ng_vault_update_fn)(ng_vault *v, void *ctx);
NG_MUST_CHECK ng_err ng_vault_update(ng_vault_store *store, const ng_vault_secret *secret, ng_vault_update_fn fn,
                                     void *ctx);

/* Reseals every entry under a new master key or passphrase, atomically. */
NG_MUST_CHECK ng_err ng_vault_rekey(ng_vault_store *store, const ng_vault_secret *old_secret,
                                    const ng_vault_secret *new_secret);

#endif

/*
 * ng_cli_vault.h: the operator commands that act on the vault offline
 * (vault, tenant, backend, peer, key), and what they share: the
 * configuration, the vault's store, and the master key.
 *
 * Every one takes --config FILE (else $NOISEGATE_CONFIG, else the built-in
 * defaults). Exit status: 0 done, 1 refused or failed (no such tenant,
 * wrong master key, damaged vault, bad connection parameters, store
 * unavailable), 2 usage or configuration error.
 */
#ifndef NG_CLI_VAULT_H
#define NG_CLI_VAULT_H

#include <stddef.h>
#include <stdint.h>

#include "ng_config.h"
#include "ng_vault.h"

enum { NG_EXIT_FAILED = 1 };

int ng_cli_vault(int argc, char **argv);
int ng_cli_tenant(int argc, char **argv);
int ng_cli_backend(int argc, char **argv);
int ng_cli_peer(int argc, char **argv);
int ng_cli_key(int argc, char **argv);
int ng_cli_outbox(int argc, char **argv);
int ng_cli_serve(int argc, char **argv);
int ng_cli_admin(int argc, char **argv);
int ng_cli_dead(int argc, char **argv);
int ng_cli_pair(int argc, char **argv);

/* One option of a command: a flag (value NULL) or one taking an argument. */
typedef struct ng_cli_opt {
    const char *name; /* "--json" */
    const char **value;
    int *flag;
} ng_cli_opt;

/*
 * Splits argv (argv[0] is the command) into the options of opts (plus
 * --config, always accepted, into *config) and at most maxpos positional
 * arguments. 0 or an exit code after a message.
 */
NG_MUST_CHECK int ng_cli_parse(const char *cmd, int argc, char **argv, const ng_cli_opt *opts, const char **config,
                               const char **pos, int maxpos, int *npos);

typedef struct ng_cli_ctx {
    const char *cmd;
    ng_config cfg;
    ng_vault_store *store;
    ng_vault_secret secret; /* data in sodium_malloc memory, wiped by close */
    uint8_t *secret_mem;
} ng_cli_ctx;

/*
 * Loads the configuration, connects the store and obtains the master key
 * (from the key file, NOISEGATE_VAULT_KEY, or NOISEGATE_VAULT_PASSPHRASE or
 * a prompt). with_key 0 skips the key. 0 or an exit code after a message.
 */
NG_MUST_CHECK int ng_cli_ctx_open(ng_cli_ctx *c, const char *cmd, const char *config, int with_key);
void ng_cli_ctx_close(ng_cli_ctx *c);
/* Obtains the master key for a context opened without it. 0 or an exit code after a message. */
NG_MUST_CHECK int ng_cli_ctx_key(ng_cli_ctx *c);

/* Opens the vault read-only for a listing. 0 or an exit code after a message. */
NG_MUST_CHECK int ng_cli_ctx_vault(ng_cli_ctx *c, ng_vault **v);

/* Runs fn in ng_vault_update. 0 or an exit code after a message naming what. */
NG_MUST_CHECK int ng_cli_ctx_update(ng_cli_ctx *c, ng_vault_update_fn fn, void *arg, const char *what);

/* Reports a failed write: "no vault" if there is none, else as ng_cli_report. */
int ng_cli_ctx_fail(ng_cli_ctx *c, ng_err err, const char *what);

/* Reports err for what ("tenant acme") with the right exit code. */
int ng_cli_report(const ng_cli_ctx *c, ng_err err, const char *what);

/* Current time in unix seconds. */
int64_t ng_cli_now(void);

#endif

/*
 * ng_cli_manage.h: how the tenant, backend, peer and key commands run an
 * operation: through the admin API when a gateway runs with this
 * configuration (it then needs no master key, and the change is live at
 * once), else on the vault directly. Either way the answer is the same JSON
 * (ng_manage.h) and a refusal is explained in the same words.
 */
#ifndef NG_CLI_MANAGE_H
#define NG_CLI_MANAGE_H

#include "ng_cli_vault.h"
#include "ng_manage.h"

/*
 * Runs op for command cmd with the configuration config (NULL: the
 * environment's). 0 with op->result set (the caller json_decrefs it), or an
 * exit code after a message.
 */
NG_MUST_CHECK int ng_cli_manage(const char *cmd, const char *config, ng_manage_op *op);

/* Prints a JSON value indented, and a newline. */
void ng_cli_print_json(const json_t *j);

#endif

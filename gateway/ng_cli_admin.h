/*
 * ng_cli_admin.h: the CLI's way to a running gateway: one request to its
 * admin API (the admin socket, or admin.address:admin.port when there is
 * no socket) with the token in admin.token_file.
 */
#ifndef NG_CLI_ADMIN_H
#define NG_CLI_ADMIN_H

#include <stddef.h>

#include "ng_config.h"

enum { NG_CLI_NO_GATEWAY = -1 };

/*
 * Sends method path (body: JSON, or NULL) and waits for the answer: 0 with
 * *status and *reply (malloc'd, NUL-terminated, *len bytes; may hold a
 * secret, so the caller wipes and frees it). NG_CLI_NO_GATEWAY, without a
 * message, when no gateway listens there (no token file yet, no socket,
 * connection refused); any other failure is an exit code after a message.
 */
int ng_cli_admin_call(const char *cmd, const ng_config *cfg, const char *method, const char *path, const char *body,
                      long *status, char **reply, size_t *len);

#endif

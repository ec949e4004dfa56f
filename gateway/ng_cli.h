/*
 * ng_cli.h: the offline commands of the noisegate binary. Each takes the
 * argv of its subcommand (argv[0] is the subcommand's name) and returns the
 * process exit code.
 */
#ifndef NG_CLI_H
#define NG_CLI_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "ng_error.h"

enum {
    NG_EXIT_OK = 0,
    NG_EXIT_NOT_OPENED = 1, /* the parcel did not open: authentication, expiry, key */
    NG_EXIT_USAGE = 2,      /* usage or I/O */
};

/* The largest input a command reads: the default parcel ceiling. */
#define NG_CLI_MAX_INPUT ((size_t)64 * 1024 * 1024)

int ng_cli_keygen(int argc, char **argv);
int ng_cli_pubkey(int argc, char **argv);
int ng_cli_seal(int argc, char **argv);
int ng_cli_open(int argc, char **argv);
int ng_cli_inspect(int argc, char **argv);
int ng_cli_config(int argc, char **argv);

/* "noisegate CMD: message" on stderr; returns code, for `return ng_cli_fail(...)`. */
int ng_cli_fail(int code, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Parses 64 hex characters into a public key; a message names `what` on failure. */
NG_MUST_CHECK int ng_cli_parse_pub(const char *cmd, const char *what, const char *hex, uint8_t pub[32]);

/* Reads an input with NG_CLI_MAX_INPUT, reporting errors; 0 or an exit code. */
NG_MUST_CHECK int ng_cli_read_input(const char *cmd, const char *path, uint8_t **buf, size_t *len);

/* Reads a key or psk file, reporting errors; 0 or an exit code. */
NG_MUST_CHECK int ng_cli_read_secret(const char *cmd, const char *what, const char *path, uint8_t *out, size_t outlen);

void ng_cli_usage(void);

#endif

#include "ng_cli.h"

#include <stdio.h>
#include <string.h>

#include "ng_hex.h"
#include "ng_io.h"

int
ng_cli_fail(int code, const char *cmd, const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "noisegate %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return code;
}

int
ng_cli_parse_pub(const char *cmd, const char *what, const char *hex, uint8_t pub[32])
{
    if (ng_hex_decode(pub, 32, hex, strlen(hex)) != NG_OK)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "%s: expected a public key of 64 hex characters", what);
    return 0;
}

int
ng_cli_read_input(const char *cmd, const char *path, uint8_t **buf, size_t *len)
{
    const char *name = path == NULL || strcmp(path, "-") == 0 ? "standard input" : path;
    ng_err err = ng_io_read_all(path, NG_CLI_MAX_INPUT, buf, len);

    if (err == NG_ERR_TOO_LARGE)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "%s: larger than the limit of %zu bytes", name, NG_CLI_MAX_INPUT);
    if (err)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "%s: cannot read: %s", name, ng_strerror(err));
    return 0;
}

int
ng_cli_read_secret(const char *cmd, const char *what, const char *path, uint8_t *out, size_t outlen)
{
    ng_err err = ng_io_read_hex_file(path, out, outlen);

    if (err == NG_ERR_PARSE)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "%s: not a %s file (expected %zu hex characters and a newline)", path,
                           what, 2 * outlen);
    if (err)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "%s: cannot read the %s file", path, what);
    return 0;
}

void
ng_cli_usage(void)
{
    fputs("usage: noisegate COMMAND [OPTIONS]\n"
          "\n"
          "  keygen [-o FILE]                    new X25519 private key (file mode 0600, never overwritten)\n"
          "  pubkey FILE                         public key of a private key file, 64 hex characters\n"
          "  seal --to PUBHEX [--from KEYFILE] [--pattern N|K|X] [--psk PSKFILE]\n"
          "       [--suite SUITE] [--content-type T] [--ttl SECONDS] [-o OUT] [IN]\n"
          "  open --key KEYFILE [--from PUBHEX] [--psk PSKFILE] [--ignore-expiry] [--json]\n"
          "       [-o OUT] [IN]\n"
          "  inspect [IN]                        the parcel header as JSON, no key needed\n"
          "  config check [--print] [FILE]       validate a configuration (FILE: else $NOISEGATE_CONFIG)\n"
          "  config show [FILE] | example        the effective configuration as JSON | every field, commented\n"
          "\n"
          "Operator commands (offline, on the vault; each takes --config FILE, else $NOISEGATE_CONFIG):\n"
          "  vault init | rekey | verify [--json]\n"
          "  tenant create TENANT [--psk] [--allow-anonymous] [--max-message BYTES] [--rate PER_S]\n"
          "  tenant list [--json] | show TENANT | delete TENANT\n"
          "  backend add TENANT --url URL [--public-key whpk_...]\n"
          "  backend list TENANT [--json] | remove TENANT ID | rotate-secret TENANT ID\n"
          "  peer export TENANT [--outbox URL] | import TENANT STRING|- [--name NAME]\n"
          "  peer list TENANT [--json] | remove TENANT NAME\n"
          "  key rotate TENANT | retire TENANT EPOCH | list TENANT [--json]\n"
          "  key export TENANT | import TENANT --public-key HEX   the backend holds the private key (end-to-end)\n"
          "  open --tenant TENANT [--config FILE] ...   open with the tenant's keys from the vault\n"
          "  outbox put TENANT [PARCEL] | list TENANT KEYID [--after ID] [--limit N] [--json]\n"
          "  outbox fetch TENANT KEYID [--after ID] [--output OUT]   (no redis.url: the embedded Redis)\n"
          "  serve                                   run the gateway\n"
          "  admin GET|POST|DELETE PATH [JSON]       a request to the running gateway's admin API\n"
          "  dead list TENANT [--after ID] [--limit N] | replay TENANT ID   dead letters (admin API)\n"
          "  pair TENANT URL                         pair a backend automatically (admin API)\n"
          "\n"
          "Suites: 25519_ChaChaPoly_BLAKE2b (default), 25519_ChaChaPoly_SHA256, 25519_ChaChaPoly_SHA512,\n"
          "        25519_AESGCM_BLAKE2b, 25519_AESGCM_SHA256, 25519_AESGCM_SHA512.\n"
          "IN and OUT default to standard input and output.\n"
          "Exit status: 0 ok, 1 the parcel did not open or the operation was refused, 2 usage,\n"
          "configuration or I/O error.\n",
          stderr);
}

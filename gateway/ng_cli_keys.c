/* noisegate keygen and pubkey. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "ng_cli.h"
#include "ng_hex.h"
#include "ng_io.h"
#include "ng_key.h"

int
ng_cli_keygen(int argc, char **argv)
{
    static const struct option opts[] = {{"output", required_argument, NULL, 'o'}, {NULL, 0, NULL, 0}};
    const char *out = NULL;
    char text[2 * NG_KEY_BYTES + 2], pubhex[2 * NG_KEY_BYTES + 1];
    ng_keypair kp;
    ng_err err;
    int c;

    opterr = 0;
    while ((c = getopt_long(argc, argv, "o:", opts, NULL)) != -1) {
        if (c != 'o')
            return ng_cli_fail(NG_EXIT_USAGE, "keygen", "usage: noisegate keygen [-o FILE]");
        out = optarg;
    }
    if (optind != argc)
        return ng_cli_fail(NG_EXIT_USAGE, "keygen", "usage: noisegate keygen [-o FILE]");

    ng_keypair_generate(&kp);
    ng_hex_encode(text, sizeof text, kp.priv, NG_KEY_BYTES);
    text[2 * NG_KEY_BYTES] = '\n';
    ng_hex_encode(pubhex, sizeof pubhex, kp.pub, NG_KEY_BYTES);
    ng_keypair_wipe(&kp);

    if (out == NULL || strcmp(out, "-") == 0)
        err = ng_io_write_all(NULL, (const uint8_t *)text, sizeof text - 1, 0);
    else
        err = ng_io_create_excl(out, (const uint8_t *)text, sizeof text - 1, 0600);
    sodium_memzero(text, sizeof text);
    if (err == NG_ERR_EXISTS)
        return ng_cli_fail(NG_EXIT_USAGE, "keygen", "%s: already exists; not overwriting a key", out);
    if (err)
        return ng_cli_fail(NG_EXIT_USAGE, "keygen", "%s: cannot write", out ? out : "standard output");
    fprintf(stderr, "public key: %s\n", pubhex);
    return NG_EXIT_OK;
}

int
ng_cli_pubkey(int argc, char **argv)
{
    char pubhex[2 * NG_KEY_BYTES + 1];
    uint8_t priv[NG_KEY_BYTES];
    ng_keypair kp;
    int rc;

    if (argc != 2 || argv[1][0] == '-')
        return ng_cli_fail(NG_EXIT_USAGE, "pubkey", "usage: noisegate pubkey FILE");
    rc = ng_cli_read_secret("pubkey", "key", argv[1], priv, sizeof priv);
    if (rc)
        return rc;
    rc = ng_keypair_from_private(&kp, priv) == NG_OK ? NG_EXIT_OK : NG_EXIT_USAGE;
    sodium_memzero(priv, sizeof priv);
    if (rc)
        return ng_cli_fail(rc, "pubkey", "%s: not a usable private key", argv[1]);
    ng_hex_encode(pubhex, sizeof pubhex, kp.pub, NG_KEY_BYTES);
    ng_keypair_wipe(&kp);
    printf("%s\n", pubhex);
    return fflush(stdout) == 0 ? NG_EXIT_OK : NG_EXIT_USAGE;
}

/* The noisegate binary: dispatches to a subcommand. */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_vault.h"
#include "ng_jsonmem.h"

#ifndef NG_VERSION
#define NG_VERSION "0.1.0"
#endif

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"keygen", ng_cli_keygen},   {"pubkey", ng_cli_pubkey}, {"seal", ng_cli_seal},   {"open", ng_cli_open},
    {"inspect", ng_cli_inspect}, {"config", ng_cli_config}, {"vault", ng_cli_vault}, {"tenant", ng_cli_tenant},
    {"backend", ng_cli_backend}, {"peer", ng_cli_peer},     {"key", ng_cli_key},     {"outbox", ng_cli_outbox},
    {"serve", ng_cli_serve},     {"admin", ng_cli_admin},   {"dead", ng_cli_dead},   {"pair", ng_cli_pair},
};

int
main(int argc, char **argv)
{
    struct rlimit no_core = {0, 0};
    size_t i;

    /* Keys pass through this process: never leave them in a core file. */
    setrlimit(RLIMIT_CORE, &no_core);
    /* A closed pipe is a write error with exit status 2, not a silent death. */
    signal(SIGPIPE, SIG_IGN);
    if (sodium_init() < 0) {
        fputs("noisegate: libsodium failed to initialise\n", stderr);
        return NG_EXIT_USAGE;
    }
    ng_jsonmem_install();
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        ng_cli_usage();
        return argc < 2 ? NG_EXIT_USAGE : NG_EXIT_OK;
    }
    if (strcmp(argv[1], "version") == 0 || strcmp(argv[1], "--version") == 0) {
        printf("noisegate %s (libsodium %s)\n", NG_VERSION, sodium_version_string());
        return NG_EXIT_OK;
    }
    for (i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "noisegate: unknown command '%s' (noisegate help)\n", argv[1]);
    return NG_EXIT_USAGE;
}

/* noisegate config: check a configuration file, show the effective one, print the reference. */
#include <stdio.h>
#include <string.h>

#include "ng_cli.h"
#include "ng_config.h"

#define USAGE "usage: noisegate config check [--print] FILE | config show [FILE] | config example"

/* Loads path (NULL: defaults and environment) and prints "FILE: ok" or the effective JSON. */
static int
check(const char *path, int print)
{
    char err[NG_CONFIG_ERR_BYTES];
    ng_config cfg;
    ng_err e;

    e = ng_config_load(&cfg, path, err, sizeof err);
    if (e)
        return ng_cli_fail(NG_EXIT_USAGE, "config", "%s", err);
    if (print)
        e = ng_config_dump(&cfg, stdout);
    else if (printf("%s: ok\n", path) < 0 || fflush(stdout) != 0)
        e = NG_ERR_IO;
    ng_config_free(&cfg);
    if (e)
        return ng_cli_fail(NG_EXIT_USAGE, "config", "standard output: %s", ng_strerror(e));
    return NG_EXIT_OK;
}

int
ng_cli_config(int argc, char **argv)
{
    const char *sub = argc >= 2 ? argv[1] : "";

    if (strcmp(sub, "check") == 0 && argc == 3 && argv[2][0] != '-')
        return check(argv[2], 0);
    if (strcmp(sub, "check") == 0 && argc == 4 && strcmp(argv[2], "--print") == 0)
        return check(argv[3], 1);
    if (strcmp(sub, "show") == 0 && (argc == 2 || (argc == 3 && argv[2][0] != '-')))
        return check(argc == 3 ? argv[2] : NULL, 1);
    if (strcmp(sub, "example") == 0 && argc == 2) {
        if (ng_config_example(stdout) != NG_OK)
            return ng_cli_fail(NG_EXIT_USAGE, "config", "standard output: cannot write");
        return NG_EXIT_OK;
    }
    return ng_cli_fail(NG_EXIT_USAGE, "config", USAGE);
}

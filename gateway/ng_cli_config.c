/* noisegate config: check a configuration file, show the effective one, print the reference. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ng_cli.h"
#include "ng_config.h"

#define USAGE "usage: noisegate config check [--print] [FILE] | config show [FILE] | config example"

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
    const char *sub = argc >= 2 ? argv[1] : "", *file;
    int print = 0, i = 2;

    if (strcmp(sub, "example") == 0 && argc == 2) {
        if (ng_config_example(stdout) != NG_OK)
            return ng_cli_fail(NG_EXIT_USAGE, "config", "standard output: cannot write");
        return NG_EXIT_OK;
    }
    if (strcmp(sub, "check") != 0 && strcmp(sub, "show") != 0)
        return ng_cli_fail(NG_EXIT_USAGE, "config", USAGE);
    if (strcmp(sub, "check") == 0 && i < argc && strcmp(argv[i], "--print") == 0) {
        print = 1;
        i++;
    }
    if (argc - i > 1 || (i < argc && argv[i][0] == '-'))
        return ng_cli_fail(NG_EXIT_USAGE, "config", USAGE);
    /* Like the operator commands, the file defaults to $NOISEGATE_CONFIG. */
    file = i < argc ? argv[i] : getenv("NOISEGATE_CONFIG");
    if (file != NULL && file[0] == 0)
        file = NULL;
    if (strcmp(sub, "show") == 0)
        return check(file, 1);
    if (file == NULL)
        return ng_cli_fail(NG_EXIT_USAGE, "config", "check: no FILE and no $NOISEGATE_CONFIG; %s", USAGE);
    return check(file, print);
}

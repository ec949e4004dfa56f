/*
 * fuzz_config: ng_config_load on arbitrary bytes as a configuration file
 * (JSON with // comments). The loader reads a path, so each input is
 * written to a file in a directory of this process's own (mkdtemp, under
 * $TMPDIR or /tmp, removed at exit); NOISEGATE_* variables are cleared
 * first, so that only the file counts.
 *
 * What the target holds the loader to (a violation aborts):
 *   - failure: a code the header lists (IO, TOO_LARGE, PARSE, NOMEM), cfg
 *     left all zero (and ng_config_free on it harmless), and one line of
 *     printable ASCII that names the file; a smaller err buffer gets the
 *     same code and the same message cut short (NUL-terminated within it);
 *   - success: every value within the schema's bounds (ints in range or an
 *     allowed 0, enums valid, strings present and of allowed length, lists
 *     no longer than their maximum), data_dir absolute, public_url not empty
 *     and without a trailing '/'; ng_config_dump succeeds, the dump loads
 *     again, and dumping that gives the same text (a fixed point);
 *   - ng_config_free leaves cfg all zero.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_check.h"
#include "ng_config.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

extern char **environ;

static char dir[256], path[300], dump_path[300];
static unsigned long long n_runs, n_ok;

static void
cleanup(void)
{
    unlink(path);
    unlink(dump_path);
    rmdir(dir);
    if (getenv("NG_FUZZ_STATS") != NULL)
        fprintf(stderr, "fuzz_config: %llu inputs, %llu loaded\n", n_runs, n_ok);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");
    size_t i;

    (void)argc;
    (void)argv;
    /* Only the file: no override from the environment this runs in. */
    for (i = 0; environ[i] != NULL;) {
        if (strncmp(environ[i], "NOISEGATE_", 10) == 0) {
            char name[256];
            size_t n = strcspn(environ[i], "=");

            CHECK(n < sizeof name);
            memcpy(name, environ[i], n);
            name[n] = '\0';
            CHECK(unsetenv(name) == 0);
        } else {
            i++;
        }
    }
    snprintf(dir, sizeof dir, "%s/ngfuzz-config-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    CHECK(mkdtemp(dir) != NULL);
    snprintf(path, sizeof path, "%s/gw.json", dir);
    snprintf(dump_path, sizeof dump_path, "%s/dump.json", dir);
    atexit(cleanup);
    return 0;
}

static void
write_file(const char *p, const uint8_t *data, size_t size)
{
    FILE *f = fopen(p, "wb");

    CHECK(f != NULL);
    CHECK(size == 0 || fwrite(data, 1, size, f) == size);
    CHECK(fclose(f) == 0);
}

static int
all_zero(const ng_config *cfg)
{
    static const ng_config zero;

    return memcmp(cfg, &zero, sizeof zero) == 0;
}

/* The dump of cfg as a malloc'd string. */
static char *
dump_text(const ng_config *cfg)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    CHECK(f != NULL);
    CHECK(ng_config_dump(cfg, f) == NG_OK);
    CHECK(fclose(f) == 0);
    CHECK(text != NULL && strlen(text) == len);
    return text;
}

static void
check_failure(ng_err e, const ng_config *cfg, const char *err, size_t errlen, const uint8_t *data, size_t size)
{
    char small[24], *full;
    size_t i, n, k;
    ng_config again;

    CHECK(e == NG_ERR_IO || e == NG_ERR_TOO_LARGE || e == NG_ERR_PARSE || e == NG_ERR_NOMEM);
    CHECK(all_zero(cfg));
    n = strnlen(err, errlen);
    CHECK(n > 0 && n < errlen);
    for (i = 0; i < n; i++)
        if (err[i] < 0x20 || err[i] > 0x7e) {
            fprintf(stderr, "byte %zu of the message is 0x%02x: %s\n", i, (unsigned char)err[i], err);
            CHECK(err[i] >= 0x20 && err[i] <= 0x7e);
        }
    if (e != NG_ERR_NOMEM)
        CHECK(strncmp(err, path, strlen(path)) == 0 && err[strlen(path)] == ':');
    /* A short buffer: the same answer, cut. */
    full = strdup(err);
    CHECK(full != NULL);
    k = 1 + (size > 0 ? data[0] % (sizeof small - 1) : 0);
    memset(small, 'Z', sizeof small);
    CHECK(ng_config_load(&again, path, small, k) == e);
    CHECK(all_zero(&again));
    CHECK(memchr(small, 0, k) != NULL);
    CHECK(strncmp(small, full, k - 1) == 0 && strlen(small) == (n < k - 1 ? n : k - 1));
    CHECK(small[k] == 'Z');
    free(full);
}

/* Every value within what the schema allows. */
static void
check_bounds(const ng_config *cfg)
{
    const ng_config_field *fields;
    size_t count, i, j;

    fields = ng_config_schema(&count);
    for (i = 0; i < count; i++) {
        const ng_config_field *f = &fields[i];
        const void *p = (const char *)cfg + f->offset;
        size_t items = f->count_offset ? *(const size_t *)((const char *)cfg + f->count_offset) : 0;

        switch (f->type) {
        case NG_CONFIG_INT: {
            int v = *(const int *)p;

            CHECK((v >= f->min && v <= f->max) || (v == 0 && (f->flags & NG_CONFIG_ZERO_OK)));
            break;
        }
        case NG_CONFIG_ENUM: {
            int v = *(const int *)p;

            CHECK(v >= 0);
            for (j = 0; f->choices[j] != NULL && (int)j < v; j++)
                ;
            CHECK((int)j == v && f->choices[j] != NULL);
            break;
        }
        case NG_CONFIG_INT_LIST:
            CHECK((long)items >= f->min && (long)items <= f->max);
            for (j = 0; j < items; j++) {
                int v = ((const int *)p)[j];

                CHECK(v >= f->item_min && v <= f->item_max);
                CHECK(!(f->flags & NG_CONFIG_NONDECREASING) || j == 0 || v >= ((const int *)p)[j - 1]);
            }
            break;
        case NG_CONFIG_NET_LIST:
        case NG_CONFIG_REDIS_LIST:
            CHECK((long)items >= f->min && (long)items <= f->max);
            for (j = 0; j < items; j++)
                CHECK(((char *const *)p)[j] != NULL);
            break;
        case NG_CONFIG_PATH:
            CHECK(*(char *const *)p != NULL);
            CHECK(strlen(*(char *const *)p) <=
                  (size_t)((f->flags & NG_CONFIG_SOCKET) ? NG_CONFIG_MAX_SOCKET_PATH : NG_CONFIG_MAX_PATH));
            CHECK((*(char *const *)p)[0] == '\0' || (*(char *const *)p)[0] == '/');
            break;
        default:
            CHECK(*(char *const *)p != NULL);
            if (f->type != NG_CONFIG_REDIS_URL && strcmp(f->path, "public_url") != 0)
                CHECK((long)strlen(*(char *const *)p) >= f->min && (long)strlen(*(char *const *)p) <= f->max);
            break;
        }
    }
    CHECK(cfg->data_dir[0] == '/');
    CHECK(cfg->public_url[0] != '\0' && cfg->public_url[strlen(cfg->public_url) - 1] != '/');
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[NG_CONFIG_ERR_BYTES], *first, *second;
    ng_config cfg, again;
    ng_err e;

    n_runs++;
    write_file(path, data, size);
    memset(err, 'Z', sizeof err);
    memset(&cfg, 0xa5, sizeof cfg);
    e = ng_config_load(&cfg, path, err, sizeof err);
    if (e != NG_OK) {
        check_failure(e, &cfg, err, sizeof err, data, size);
        ng_config_free(&cfg);
        CHECK(all_zero(&cfg));
        return 0;
    }
    n_ok++;
    CHECK(err[0] == '\0');
    check_bounds(&cfg);
    first = dump_text(&cfg);
    write_file(dump_path, (const uint8_t *)first, strlen(first));
    e = ng_config_load(&again, dump_path, err, sizeof err);
    if (e != NG_OK)
        fprintf(stderr, "the dump does not load: %s\n%s", err, first);
    CHECK(e == NG_OK);
    check_bounds(&again);
    second = dump_text(&again);
    if (strcmp(first, second) != 0)
        fprintf(stderr, "dump:\n%s\nits dump:\n%s", first, second);
    CHECK(strcmp(first, second) == 0);
    free(first);
    free(second);
    ng_config_free(&again);
    ng_config_free(&cfg);
    CHECK(all_zero(&cfg) && all_zero(&again));
    return 0;
}

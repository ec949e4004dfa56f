/*
 * fuzz_jsonload: ng_jsonload, the loader that reads every JSON request body
 * on the submit path, against the loader it stands in for: json_loadb with
 * JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL. ng_jsonload.h promises that it
 * accepts what jansson accepts (one quirk aside) and the same values, so that
 * callers may go on relying on jansson's rules; this target holds it to
 * that, differentially, on arbitrary bytes.
 *
 * The input is the whole document, given to both loaders as one exact-size
 * heap copy, so ASan catches a read past its end (the loader is never given
 * a terminating NUL to stop at). Allocations go through ng_jsonmem, as in
 * the gateway.
 *
 * What the target holds the loader to (a violation aborts):
 *   - it accepts exactly when jansson accepts (NG_ERR_NOMEM decides
 *     nothing: then jansson's answer is not compared), but for jansson's
 *     quirk of skipping a NUL byte after a number or literal: a document
 *     jansson accepts with NUL bytes in it is read here with them taken
 *     out, and must then give the same values;
 *   - accepted: an object or an array of the same type as jansson's, the
 *     same compact text byte for byte (key order, integer or real, strings
 *     with U+0000 in them), and json_equal to it;
 *   - refused: NG_ERR_PARSE, *out NULL, a reason other than NOMEM, and a
 *     position in the input (line >= 1 and no more than its lines, column
 *     >= 0 and no more than its length);
 *   - the same answer without an error block; the input is not written to.
 *
 * Set NG_FUZZ_STATS=1 to print at exit how many inputs both loaders
 * accepted and how many each reason refused: a figure near zero for
 * accepted means the seeds no longer reach the value building.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_check.h"
#include "ng_jsonload.h"
#include "ng_jsonmem.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

enum { N_WHY = NG_JSONLOAD_NOMEM + 1 };

static const char *const why_names[N_WHY] = {"invalid",    "truncated",    "utf8",     "duplicate_key",
                                             "nul_in_key", "number_range", "too_deep", "nomem"};
static unsigned long long n_runs, n_accepted, n_quirk, n_refused[N_WHY];

static void
print_stats(void)
{
    int i;

    fprintf(stderr, "fuzz_jsonload: %llu inputs, %llu accepted, %llu with jansson's NUL quirk; refused:", n_runs,
            n_accepted, n_quirk);
    for (i = 0; i < N_WHY; i++)
        fprintf(stderr, " %s %llu%s", why_names[i], n_refused[i], i + 1 < N_WHY ? "," : "\n");
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    ng_jsonmem_install(); /* as the gateway runs */
    if (getenv("NG_FUZZ_STATS") != NULL)
        atexit(print_stats);
    return 0;
}

static char *
dump(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

    CHECK(s != NULL);
    return s;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *copy = malloc(size); /* exact size; ASan gives a block even for 0 */
    ng_jsonload_error e;
    json_error_t jerr;
    json_t *v, *v2, *ref;
    size_t i, lines = 1;
    ng_err rc, rc2;

    CHECK(copy != NULL);
    if (size > 0)
        memcpy(copy, data, size);
    n_runs++;
    v = (json_t *)copy; /* anything but NULL: the loader must set it */
    memset(&e, 0xa5, sizeof e);
    rc = ng_jsonload(copy, size, &v, &e);
    CHECK(size == 0 || memcmp(copy, data, size) == 0);
    ref = json_loadb((const char *)copy, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);

    if (rc == NG_ERR_NOMEM) {
        /* Can't judge against jansson, but it is still a clean refusal. */
        CHECK(v == NULL && e.why == NG_JSONLOAD_NOMEM);
        n_refused[NG_JSONLOAD_NOMEM]++;
    } else if (rc == NG_OK) {
        char *a, *b;

        if (ref == NULL)
            fprintf(stderr, "ng_jsonload accepts, jansson refuses: %s at %d:%d\n", jerr.text, jerr.line, jerr.column);
        CHECK(ref != NULL);
        CHECK(v != NULL && (json_is_object(v) || json_is_array(v)));
        CHECK(json_typeof(v) == json_typeof(ref));
        a = dump(v);
        b = dump(ref);
        if (strcmp(a, b) != 0)
            fprintf(stderr, "ng_jsonload gives %s\njansson gives     %s\n", a, b);
        CHECK(strcmp(a, b) == 0);
        CHECK(json_equal(v, ref));
        free(a);
        free(b);
        n_accepted++;
    } else if (ref != NULL && memchr(data, 0, size) != NULL) {
        /*
         * jansson's one quirk (ng_jsonload.h): it skips a NUL byte after a
         * number or literal. A document it accepts has a NUL nowhere else
         * (not in a string, where raw control bytes are refused), so with
         * every NUL taken out it must read the same here.
         */
        uint8_t *stripped = malloc(size);
        size_t n = 0;
        json_t *v3 = NULL;
        char *a, *b;

        CHECK(stripped != NULL);
        for (i = 0; i < size; i++)
            if (data[i] != 0)
                stripped[n++] = data[i];
        CHECK(ng_jsonload(stripped, n, &v3, NULL) == NG_OK);
        free(stripped);
        a = dump(v3);
        b = dump(ref);
        CHECK(strcmp(a, b) == 0);
        free(a);
        free(b);
        json_decref(v3);
        n_quirk++;
    } else {
        if (ref != NULL)
            fprintf(stderr, "ng_jsonload refuses (%s at %d:%d), jansson accepts\n",
                    (unsigned)e.why < N_WHY ? why_names[e.why] : "?", e.line, e.column);
        CHECK(ref == NULL);
        CHECK(rc == NG_ERR_PARSE && v == NULL);
        CHECK(e.why >= NG_JSONLOAD_INVALID && e.why < NG_JSONLOAD_NOMEM);
        for (i = 0; i < size; i++)
            lines += data[i] == '\n';
        CHECK(e.line >= 1 && (size_t)e.line <= lines);
        CHECK(e.column >= 0 && (size_t)e.column <= size);
        n_refused[e.why]++;
    }

    /* No error block: the same answer. */
    v2 = (json_t *)copy;
    rc2 = ng_jsonload(copy, size, &v2, NULL);
    if (rc != NG_ERR_NOMEM && rc2 != NG_ERR_NOMEM) {
        CHECK(rc2 == rc);
        CHECK((v2 != NULL) == (rc2 == NG_OK));
        CHECK(v2 == NULL || json_equal(v2, v));
    }
    CHECK(rc2 == NG_OK || v2 == NULL);

    json_decref(v);
    json_decref(v2);
    json_decref(ref);
    free(copy);
    return 0;
}

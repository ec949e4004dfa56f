/*
 * Plain malloc blocks, so that a string from json_dumps may still be given
 * to free() as jansson documents; jansson's own frees wipe the block first,
 * whatever its size, as glibc reports it.
 */
#define _GNU_SOURCE
#include "ng_jsonmem.h"

#include <malloc.h>
#include <stdlib.h>

#include <jansson.h>
#include <sodium.h>

static void
wiping_free(void *p)
{
    if (p == NULL)
        return;
    sodium_memzero(p, malloc_usable_size(p));
    free(p);
}

void
ng_jsonmem_install(void)
{
    json_set_alloc_funcs(malloc, wiping_free);
}

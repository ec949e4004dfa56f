/*
 * ng_jsonmem.h: jansson allocations that are wiped when freed. Connection
 * parameters and records pass through jansson strings on their way to and
 * from the vault; with this installed, no copy of a psk or token outlives
 * its json_t in freed heap memory.
 */
#ifndef NG_JSONMEM_H
#define NG_JSONMEM_H

/* Call once, before any other jansson call (it sets jansson's allocator). */
void ng_jsonmem_install(void);

#endif

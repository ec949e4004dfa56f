/*
 * ng_io.h: whole-file reads with a size limit, atomic writes, and the key
 * file format (64 hex characters and a newline).
 */
#ifndef NG_IO_H
#define NG_IO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "ng_error.h"

/*
 * Reads all of path ("-" or NULL: standard input) into a malloc'd buffer
 * (*out, freed by the caller; never NULL on success). NG_ERR_TOO_LARGE as
 * soon as more than max bytes arrive, without reading the rest;
 * NG_ERR_NOT_FOUND if there is no such file.
 */
NG_MUST_CHECK ng_err ng_io_read_all(const char *path, size_t max, uint8_t **out, size_t *len);

/*
 * Writes buf to path ("-" or NULL: standard output). A file is written to a
 * temporary name beside it, fsync'd and renamed, so readers never see a
 * partial file. mode applies to a new file.
 */
NG_MUST_CHECK ng_err ng_io_write_all(const char *path, const uint8_t *buf, size_t len, mode_t mode);

/* Creates path with O_EXCL (never overwrites): NG_ERR_EXISTS if it is there. */
NG_MUST_CHECK ng_err ng_io_create_excl(const char *path, const uint8_t *buf, size_t len, mode_t mode);

/*
 * Reads a key or psk file: exactly 2 * outlen hex characters, optionally
 * followed by one newline. NG_ERR_PARSE otherwise. Temporary copies are wiped.
 */
NG_MUST_CHECK ng_err ng_io_read_hex_file(const char *path, uint8_t *out, size_t outlen);

#endif

/* The file form of the vault store: an fcntl lock and atomic replacement. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ng_io.h"
#include "ng_vault_store.h"

struct file_store {
    struct ng_vault_store base;
    int lock_fd;
    char path[4096];
    char lock_path[4096 + 8];
};

/*
 * An exclusive POSIX record lock on the lock file. The kernel drops it when
 * the process dies, so a killed writer never leaves the vault locked.
 */
static ng_err
file_begin(ng_vault_store *s)
{
    struct file_store *f = (struct file_store *)s;
    struct flock fl;
    int fd = open(f->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0)
        return NG_ERR_IO;
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    while (fcntl(fd, F_SETLKW, &fl) != 0) {
        if (errno == EINTR)
            continue;
        close(fd);
        return NG_ERR_IO;
    }
    f->lock_fd = fd;
    return NG_OK;
}

static ng_err
file_read(ng_vault_store *s, size_t max, uint8_t **buf, size_t *len)
{
    struct file_store *f = (struct file_store *)s;
    ng_err err = ng_io_read_all(f->path, max, buf, len);

    /* Nothing this large was ever written by a vault: damage, not a limit. */
    return err == NG_ERR_TOO_LARGE ? NG_ERR_CORRUPT : err;
}

static ng_err
file_write(ng_vault_store *s, const uint8_t *buf, size_t len, int create)
{
    struct file_store *f = (struct file_store *)s;

    /* Writers hold the lock, so the file cannot have changed since begin. */
    if (create && access(f->path, F_OK) == 0)
        return NG_ERR_EXISTS;
    return ng_io_write_all(f->path, buf, len, 0600);
}

static void
file_end(ng_vault_store *s)
{
    struct file_store *f = (struct file_store *)s;

    if (f->lock_fd >= 0)
        close(f->lock_fd);
    f->lock_fd = -1;
}

static void
file_destroy(ng_vault_store *s)
{
    file_end(s);
    free(s);
}

/* The file is replaced by rename, never rewritten in place, so one open sees one version. */
static ng_err
file_stamp(ng_vault_store *s, uint8_t *out)
{
    struct file_store *f = (struct file_store *)s;
    struct stat st;
    ssize_t n;
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return errno == ENOENT ? NG_ERR_NOT_FOUND : NG_ERR_IO;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return NG_ERR_IO;
    }
    if (st.st_size < NG_VAULT_STORE_STAMP_BYTES) {
        close(fd);
        return NG_ERR_CORRUPT;
    }
    do
        n = pread(fd, out, NG_VAULT_STORE_STAMP_BYTES, st.st_size - NG_VAULT_STORE_STAMP_BYTES);
    while (n < 0 && errno == EINTR);
    close(fd);
    return n == NG_VAULT_STORE_STAMP_BYTES ? NG_OK : NG_ERR_IO;
}

static const struct ng_vault_store_ops file_ops = {file_begin, file_read,    file_write,
                                                   file_end,   file_destroy, file_stamp};

ng_err
ng_vault_store_file(ng_vault_store **out, const char *path)
{
    struct file_store *f;

    *out = NULL;
    if (path == NULL || path[0] == '\0' || strlen(path) >= sizeof f->path)
        return NG_ERR_INVALID_ARG;
    f = calloc(1, sizeof *f);
    if (f == NULL)
        return NG_ERR_NOMEM;
    f->base.ops = &file_ops;
    f->lock_fd = -1;
    snprintf(f->path, sizeof f->path, "%s", path);
    snprintf(f->lock_path, sizeof f->lock_path, "%s.lock", path);
    snprintf(f->base.where, sizeof f->base.where, "vault file %s", path);
    *out = &f->base;
    return NG_OK;
}

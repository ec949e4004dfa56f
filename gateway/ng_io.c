#include "ng_io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "ng_hex.h"

static int
is_std(const char *path)
{
    return path == NULL || strcmp(path, "-") == 0;
}

ng_err
ng_io_read_all(const char *path, size_t max, uint8_t **out, size_t *len)
{
    size_t cap = 64 * 1024, used = 0;
    uint8_t *buf;
    int fd, own = !is_std(path);
    ng_err err = NG_OK;

    *out = NULL;
    *len = 0;
    fd = own ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
    if (fd < 0)
        return errno == ENOENT ? NG_ERR_NOT_FOUND : NG_ERR_IO;
    buf = malloc(cap);
    if (buf == NULL) {
        err = NG_ERR_NOMEM;
        goto out;
    }
    for (;;) {
        ssize_t n;

        if (used == cap) {
            uint8_t *bigger;
            /* Grow to one byte past the limit at most: that byte proves "too large". */
            size_t want = cap > max / 2 ? max + 1 : cap * 2;
            if (want <= cap) {
                err = NG_ERR_TOO_LARGE;
                break;
            }
            bigger = realloc(buf, want);
            if (bigger == NULL) {
                err = NG_ERR_NOMEM;
                break;
            }
            buf = bigger;
            cap = want;
        }
        n = read(fd, buf + used, cap - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            err = NG_ERR_IO;
            break;
        }
        if (n == 0)
            break;
        used += (size_t)n;
        if (used > max) {
            err = NG_ERR_TOO_LARGE;
            break;
        }
    }
out:
    if (own && fd >= 0)
        close(fd);
    if (err) {
        free(buf);
        return err;
    }
    *out = buf;
    *len = used;
    return NG_OK;
}

static ng_err
write_fd(int fd, const uint8_t *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return NG_ERR_IO;
        buf += n;
        len -= (size_t)n;
    }
    return NG_OK;
}

/* After a rename, the directory entry itself must reach the disk too. */
static ng_err
sync_dir(const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    size_t len = slash == NULL ? 1 : (slash == path ? 1 : (size_t)(slash - path));
    int fd, rc;

    if (len >= sizeof dir)
        return NG_ERR_IO;
    memcpy(dir, slash == NULL ? "." : path, len);
    dir[len] = '\0';
    fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NG_ERR_IO;
    rc = fsync(fd);
    close(fd);
    return rc == 0 ? NG_OK : NG_ERR_IO;
}

ng_err
ng_io_write_all(const char *path, const uint8_t *buf, size_t len, mode_t mode)
{
    char tmp[4096];
    int fd, n;
    ng_err err;

    if (is_std(path))
        return write_fd(STDOUT_FILENO, buf, len);
    n = snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    if (n < 0 || (size_t)n >= sizeof tmp)
        return NG_ERR_IO;
    /* The name carries our pid, so a file of that name is a leftover of a
     * killed process that had the same pid: safe to remove. */
    unlink(tmp);
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    if (fd < 0)
        return NG_ERR_IO;
    err = write_fd(fd, buf, len);
    if (err == NG_OK && fsync(fd) != 0)
        err = NG_ERR_IO;
    if (close(fd) != 0 && err == NG_OK)
        err = NG_ERR_IO;
    if (err == NG_OK && rename(tmp, path) != 0)
        err = NG_ERR_IO;
    if (err) {
        unlink(tmp);
        return err;
    }
    return sync_dir(path);
}

ng_err
ng_io_create_excl(const char *path, const uint8_t *buf, size_t len, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
    ng_err err;

    if (fd < 0)
        return errno == EEXIST ? NG_ERR_EXISTS : NG_ERR_IO;
    err = write_fd(fd, buf, len);
    if (err == NG_OK && fsync(fd) != 0)
        err = NG_ERR_IO;
    if (close(fd) != 0 && err == NG_OK)
        err = NG_ERR_IO;
    if (err)
        unlink(path);
    return err;
}

ng_err
ng_io_read_hex_file(const char *path, uint8_t *out, size_t outlen)
{
    char text[2 * 64 + 3];
    size_t used = 0;
    ng_err err = NG_OK;
    int fd;

    if (outlen > 64)
        return NG_ERR_INVALID_ARG;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NG_ERR_IO;
    for (;;) {
        ssize_t n = read(fd, text + used, sizeof text - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            err = NG_ERR_IO;
        if (n <= 0 || (used += (size_t)n) == sizeof text)
            break;
    }
    close(fd);
    if (err == NG_OK) {
        if (used == 2 * outlen + 1 && text[used - 1] == '\n')
            used--;
        err = ng_hex_decode(out, outlen, text, used);
    }
    sodium_memzero(text, sizeof text);
    return err;
}

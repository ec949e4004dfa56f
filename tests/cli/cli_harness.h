/*
 * cli_harness.h: running the real noisegate binary from a cmocka test.
 * NG_BIN names it; ng_run writes stdin and collects stdout and stderr in
 * one poll() loop, so no pipe can deadlock against the child, and the
 * child starts with default signal dispositions whatever the test ignores.
 * Buffers ("blobs") of the running test are freed by blobs_free, and the
 * JSON it kept by keep_clear, even when an assertion jumped out. Shared by
 * the CLI suites.
 */
#ifndef TEST_CLI_HARNESS_H
#define TEST_CLI_HARNESS_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

extern char **environ;

enum {
    MAX_ARGS = 40,
    IO_CHUNK = 64 * 1024,
    /* Generous: the binary may be an ASan build on a loaded 2-core machine. */
    RUN_TIMEOUT_MS = 120 * 1000,
    STDOUT_CLOSED = 1, /* ng_run flag: the child's stdout has no reader from the start */
};

/* The argument vector of a subcommand, without argv[0]. */
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A growable byte buffer, always NUL-terminated so text output reads as a string. */
typedef struct blob {
    struct blob *next;
    uint8_t *data;
    size_t len, cap;
} blob;

typedef struct result {
    int status; /* exit status when sig == 0 */
    int sig;    /* the signal that killed it, else 0 */
    long ms;    /* wall time */
    blob *out, *err;
} result;

static char ng_bin[PATH_MAX];
/* Every blob of the running test. */
static blob *blobs;
/* The last command line, for failure messages. */
static char last_cmd[4096];

static inline blob *
blob_new(void)
{
    blob *b = calloc(1, sizeof *b);

    assert_non_null(b);
    b->cap = 256;
    b->data = malloc(b->cap);
    assert_non_null(b->data);
    b->data[0] = 0;
    b->next = blobs;
    blobs = b;
    return b;
}

static inline void
blob_reserve(blob *b, size_t more)
{
    size_t want = b->len + more + 1;
    uint8_t *bigger;

    if (want <= b->cap)
        return;
    while (b->cap < want)
        b->cap *= 2;
    bigger = realloc(b->data, b->cap);
    assert_non_null(bigger);
    b->data = bigger;
}

static inline void
blob_append(blob *b, const void *data, size_t len)
{
    blob_reserve(b, len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = 0;
}

static inline blob *
blob_of(const void *data, size_t len)
{
    blob *b = blob_new();

    blob_append(b, data, len);
    return b;
}

static inline blob *
blob_str(const char *s)
{
    return blob_of(s, strlen(s));
}

static inline const char *
text_of(const blob *b)
{
    return (const char *)b->data;
}

static inline void
blobs_free(void)
{
    while (blobs != NULL) {
        blob *next = blobs->next;

        free(blobs->data);
        free(blobs);
        blobs = next;
    }
}

static inline const char *vtextf(const char *fmt, va_list ap) __attribute__((format(printf, 1, 0)));
static inline const char *textf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* printf into a blob of the running test. */
static inline const char *
vtextf(const char *fmt, va_list ap)
{
    blob *b = blob_new();
    va_list again;
    int n;

    va_copy(again, ap);
    n = vsnprintf(NULL, 0, fmt, again);
    va_end(again);
    assert_true(n >= 0);
    blob_reserve(b, (size_t)n);
    vsnprintf((char *)b->data, (size_t)n + 1, fmt, ap);
    b->len = (size_t)n;
    return text_of(b);
}

static inline const char *
textf(const char *fmt, ...)
{
    va_list ap;
    const char *s;

    va_start(ap, fmt);
    s = vtextf(fmt, ap);
    va_end(ap);
    return s;
}

/* ---- JSON ---- */

/* JSON documents of the running test, released by keep_clear (or keep_free) in its teardown. */
static json_t *keep;

static inline json_t *
kept(json_t *j)
{
    if (keep == NULL)
        keep = json_array();
    if (j != NULL)
        json_array_append_new(keep, j);
    return j;
}

static inline void
keep_clear(void)
{
    if (keep != NULL)
        json_array_clear(keep);
}

static inline void
keep_free(void)
{
    json_decref(keep);
    keep = NULL;
}

/*
 * The document inside connection parameters ("ngcp1:" and base64url), as a
 * backend handed them would read it. Duplicate keys are refused: a reader
 * that keeps the first and one that keeps the last would read different
 * parameters.
 */
static inline json_t *
params_doc(const char *s)
{
    size_t len = strlen(s), got;
    uint8_t *buf;
    json_t *j;

    assert_true(strncmp(s, "ngcp1:", 6) == 0);
    buf = malloc(len);
    assert_non_null(buf);
    assert_int_equal(
        sodium_base642bin(buf, len, s + 6, len - 6, NULL, &got, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING), 0);
    j = json_loadb((const char *)buf, got, JSON_REJECT_DUPLICATES, NULL);
    free(buf);
    assert_non_null(j);
    return kept(j);
}

static inline long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long)ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static inline void
set_cloexec(int fd)
{
    assert_int_equal(fcntl(fd, F_SETFD, FD_CLOEXEC), 0);
}

static inline void
describe(const char *const *args)
{
    size_t i, used;

    snprintf(last_cmd, sizeof last_cmd, "noisegate");
    for (i = 0; args[i] != NULL; i++) {
        used = strlen(last_cmd);
        if (strlen(args[i]) > 200)
            snprintf(last_cmd + used, sizeof last_cmd - used, " %.60s...(%zu bytes)", args[i], strlen(args[i]));
        else
            snprintf(last_cmd + used, sizeof last_cmd - used, " %s", args[i][0] ? args[i] : "''");
    }
}

/* Reads what fd has into b; closes it and returns -1 at end of file. */
static inline int
drain(int fd, blob *b)
{
    ssize_t n;

    blob_reserve(b, IO_CHUNK);
    n = read(fd, b->data + b->len, IO_CHUNK);
    if (n < 0 && (errno == EINTR || errno == EAGAIN))
        return fd;
    if (n <= 0) {
        close(fd);
        return -1;
    }
    b->len += (size_t)n;
    b->data[b->len] = 0;
    return fd;
}

static inline void
fill_argv(const char **argv, const char *const *args)
{
    size_t n;

    argv[0] = ng_bin;
    for (n = 0; args[n] != NULL; n++) {
        assert_true(n < MAX_ARGS);
        argv[n + 1] = args[n];
    }
    argv[n + 1] = NULL;
}

/* The child starts with default signal actions and mask, whatever this process ignores. */
static inline void
spawn_attr(posix_spawnattr_t *attr)
{
    sigset_t set;

    assert_int_equal(posix_spawnattr_init(attr), 0);
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    assert_int_equal(posix_spawnattr_setsigdefault(attr, &set), 0);
    sigemptyset(&set);
    assert_int_equal(posix_spawnattr_setsigmask(attr, &set), 0);
    assert_int_equal(posix_spawnattr_setflags(attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK), 0);
}

/*
 * Starts the binary with args without waiting: stdin and stdout /dev/null,
 * stderr appended to err_file (or /dev/null). Stopping it by its PID is the
 * caller's.
 */
static inline pid_t
spawn_bg(const char *const *args, const char *err_file)
{
    const char *argv[MAX_ARGS + 2];
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    pid_t pid;
    int rc;

    fill_argv(argv, args);
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0), 0);
    assert_int_equal(posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_file ? err_file : "/dev/null",
                                                      O_WRONLY | O_CREAT | O_APPEND, 0600),
                     0);
    spawn_attr(&attr);
    rc = posix_spawn(&pid, ng_bin, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        fail_msg("posix_spawn %s: %s", ng_bin, strerror(rc));
    return pid;
}

/*
 * Runs the binary with args, writing in[0..in_len) to its stdin (closed at
 * once when empty) while collecting stdout and stderr through one poll()
 * loop, so no pipe can deadlock against the child.
 */
static inline result
ng_run(const uint8_t *in, size_t in_len, int flags, const char *const *args)
{
    const char *argv[MAX_ARGS + 2];
    int pin[2], pout[2], perr[2], fds[6], in_fd, out_fd, err_fd, st, i, rc;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    size_t off = 0;
    result res = {0, 0, 0, blob_new(), blob_new()};
    long start = now_ms();
    pid_t pid;

    describe(args);
    fill_argv(argv, args);
    assert_int_equal(pipe(pin), 0);
    assert_int_equal(pipe(pout), 0);
    assert_int_equal(pipe(perr), 0);
    fds[0] = pin[0], fds[1] = pin[1], fds[2] = pout[0], fds[3] = pout[1], fds[4] = perr[0], fds[5] = perr[1];
    /* Only the dup2'd copies may reach the child, or it would hold its own pipes open. */
    for (i = 0; i < 6; i++)
        set_cloexec(fds[i]);
    if (flags & STDOUT_CLOSED) {
        /* Closed before the child exists: its very first write meets a pipe without reader. */
        close(pout[0]);
        pout[0] = -1;
    }
    assert_int_equal(posix_spawn_file_actions_init(&fa), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, pin[0], STDIN_FILENO), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, pout[1], STDOUT_FILENO), 0);
    assert_int_equal(posix_spawn_file_actions_adddup2(&fa, perr[1], STDERR_FILENO), 0);
    spawn_attr(&attr);
    rc = posix_spawn(&pid, ng_bin, &fa, &attr, (char *const *)argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    if (rc != 0)
        fail_msg("posix_spawn %s: %s", ng_bin, strerror(rc));
    close(pin[0]);
    close(pout[1]);
    close(perr[1]);

    in_fd = pin[1];
    out_fd = pout[0];
    err_fd = perr[0];
    if (in_len == 0) {
        close(in_fd);
        in_fd = -1;
    } else {
        assert_int_equal(fcntl(in_fd, F_SETFL, O_NONBLOCK), 0);
    }
    while (in_fd >= 0 || out_fd >= 0 || err_fd >= 0) {
        struct pollfd pfd[3];
        nfds_t np = 0;
        int k;

        if (in_fd >= 0)
            pfd[np++] = (struct pollfd){in_fd, POLLOUT, 0};
        if (out_fd >= 0)
            pfd[np++] = (struct pollfd){out_fd, POLLIN, 0};
        if (err_fd >= 0)
            pfd[np++] = (struct pollfd){err_fd, POLLIN, 0};
        rc = poll(pfd, np, RUN_TIMEOUT_MS);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            fail_msg("`%s` timed out or poll failed", last_cmd);
        }
        for (k = 0; k < (int)np; k++) {
            if (pfd[k].revents == 0)
                continue;
            if (pfd[k].fd == in_fd) {
                size_t want = in_len - off < IO_CHUNK ? in_len - off : IO_CHUNK;
                ssize_t w = write(in_fd, in + off, want);

                if (w > 0)
                    off += (size_t)w;
                if (off == in_len || (w < 0 && errno != EAGAIN && errno != EINTR)) {
                    close(in_fd);
                    in_fd = -1;
                }
            } else if (pfd[k].fd == out_fd) {
                out_fd = drain(out_fd, res.out);
            } else if (pfd[k].fd == err_fd) {
                err_fd = drain(err_fd, res.err);
            }
        }
    }
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    res.ms = now_ms() - start;
    if (WIFEXITED(st))
        res.status = WEXITSTATUS(st);
    else if (WIFSIGNALED(st))
        res.sig = WTERMSIG(st);
    return res;
}

static inline result
ng(const blob *in, const char *const *args)
{
    return ng_run(in ? in->data : NULL, in ? in->len : 0, 0, args);
}

static inline void
put_file(const char *name, const void *data, size_t len)
{
    FILE *f = fopen(name, "wb");

    if (f == NULL)
        fail_msg("cannot write %s: %s", name, strerror(errno));
    if (len > 0)
        assert_int_equal(fwrite(data, 1, len, f), len);
    assert_int_equal(fclose(f), 0);
}

static inline void
put_text(const char *name, const char *text)
{
    put_file(name, text, strlen(text));
}

/* The whole file, or NULL if it does not exist. */
static inline blob *
slurp(const char *name)
{
    uint8_t buf[IO_CHUNK];
    FILE *f = fopen(name, "rb");
    blob *b;
    size_t n;

    if (f == NULL) {
        assert_int_equal(errno, ENOENT);
        return NULL;
    }
    b = blob_new();
    while ((n = fread(buf, 1, sizeof buf, f)) > 0)
        blob_append(b, buf, n);
    assert_int_equal(ferror(f), 0);
    fclose(f);
    return b;
}

static inline int
exists(const char *name)
{
    struct stat st;

    return lstat(name, &st) == 0;
}

static inline int
is_lower_hex(const char *s, size_t n)
{
    size_t i;

    if (s == NULL || strlen(s) != n)
        return 0;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return 1;
}

static inline void
expect_exit_at(result res, int want, int line)
{
    if (res.sig != 0)
        fail_msg("line %d: `%s` killed by signal %d; stderr: %s", line, last_cmd, res.sig, text_of(res.err));
    if (res.status != want)
        fail_msg("line %d: `%s` exited %d, expected %d; stdout: %.400s; stderr: %s", line, last_cmd, res.status, want,
                 text_of(res.out), text_of(res.err));
}

static inline void
expect_refused_at(result res, int want, int line)
{
    expect_exit_at(res, want, line);
    if (res.out->len != 0)
        fail_msg("line %d: `%s` refused but wrote on stdout: %.400s", line, last_cmd, text_of(res.out));
    if (res.err->len == 0)
        fail_msg("line %d: `%s` refused without a message on stderr", line, last_cmd);
}

#define EXPECT_EXIT(res, want)    expect_exit_at((res), (want), __LINE__)
#define EXPECT_REFUSED(res, want) expect_refused_at((res), (want), __LINE__)

#endif

/*
 * The embedded redis-server: it answers on its unix socket only, keeps an
 * AOF under the data directory, comes back after kill -9 with its data,
 * backs off in a crash loop, stops cleanly, refuses a second owner of the
 * data directory, stops a server orphaned by a killed gateway (with its
 * data) and goes on, and fails fast and clearly when it cannot run. Each test has its own
 * temporary directory; servers come from PATH (Debian package
 * redis-server) or are shell scripts standing in for one.
 *
 * Run as `test_redis_embed --hold DIR`, the binary is a gateway stand-in
 * for the orphan test: it starts a server on DIR, prints its pid and waits
 * for its stdin to close.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "ng_config.h"
#include "ng_redis.h"
#include "ng_redis_embed.h"

/* The gateway casts redis.appendfsync straight to the embed's enum. */
_Static_assert(NG_REDIS_EMBED_FSYNC_EVERYSEC == (int)NG_CONFIG_APPENDFSYNC_EVERYSEC &&
                   NG_REDIS_EMBED_FSYNC_ALWAYS == (int)NG_CONFIG_APPENDFSYNC_ALWAYS &&
                   NG_REDIS_EMBED_FSYNC_NO == (int)NG_CONFIG_APPENDFSYNC_NO,
               "ng_redis_embed_fsync follows ng_config_appendfsync");

extern char **environ;

enum { LEAK_FD = 37 };

/* A failed assertion leaves the test at once: teardown stops what it left running. */
struct fixture {
    char tmp[PATH_MAX / 2];      /* the test's directory */
    char data[PATH_MAX / 2 + 8]; /* <tmp>/data, the data_dir, created by the code under test */
    ng_redis_embed *live[2];     /* started and not yet freed */
    pid_t holder;                /* a --hold process not yet reaped */
};

static int
setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);

    if (f == NULL)
        return -1;
    snprintf(f->tmp, sizeof f->tmp, "%s/ngembed-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(f->tmp) == NULL) {
        free(f);
        return -1;
    }
    snprintf(f->data, sizeof f->data, "%s/data", f->tmp);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;
    char cmd[PATH_MAX], pidfile[PATH_MAX], text[32];
    size_t i;
    int fd, rc;

    for (i = 0; i < 2; i++)
        ng_redis_embed_free(f->live[i]);
    if (f->holder > 0) {
        kill(f->holder, SIGKILL);
        waitpid(f->holder, NULL, 0);
    }
    /* An orphaned server of the --hold test. */
    snprintf(pidfile, sizeof pidfile, "%s/redis/redis.pid", f->data);
    fd = open(pidfile, O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, text, sizeof text - 1);

        close(fd);
        text[n > 0 ? n : 0] = '\0';
        if (strtol(text, NULL, 10) > 0)
            kill((pid_t)strtol(text, NULL, 10), SIGKILL);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->tmp);
    rc = system(cmd);
    free(f);
    return rc == 0 ? 0 : -1;
}

static long long
now_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};

    nanosleep(&ts, NULL);
}

static void
path_in(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);

    assert_true(n > 0 && (size_t)n < outlen);
}

static void
write_file(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    assert_int_equal(close(fd), 0);
}

/* The whole file, NUL-terminated, in buf; its length. */
static size_t
read_file(const char *path, char *buf, size_t len)
{
    int fd = open(path, O_RDONLY);
    ssize_t n;

    assert_true(fd >= 0);
    n = read(fd, buf, len - 1);
    close(fd);
    assert_true(n >= 0);
    buf[n] = '\0';
    return (size_t)n;
}

static redisContext *
connect_to(const ng_redis_embed *e)
{
    redisContext *c = NULL;

    assert_int_equal(ng_redis_connect(&c, ng_redis_embed_url(e), 2000), NG_OK);
    return c;
}

/* One command with a string reply (status, bulk, or the second element of an array); 0 if it matches want. */
static int
reply_is(redisContext *c, const char *want, const char *fmt, ...)
{
    redisReply *r;
    va_list ap;
    int rc = -1;

    va_start(ap, fmt);
    r = redisvCommand(c, fmt, ap);
    va_end(ap);
    if (r == NULL)
        return -1;
    if ((r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_STRING) && strcmp(r->str, want) == 0)
        rc = 0;
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 2 && r->element[1]->type == REDIS_REPLY_STRING &&
        strcmp(r->element[1]->str, want) == 0)
        rc = 0;
    freeReplyObject(r);
    return rc;
}

/* Whether a fresh connection gets PONG. */
static int
answers(const ng_redis_embed *e)
{
    redisContext *c = NULL;
    int ok;

    if (ng_redis_connect(&c, ng_redis_embed_url(e), 500) != NG_OK)
        return 0;
    ok = reply_is(c, "PONG", "PING") == 0;
    redisFree(c);
    return ok;
}

static off_t
dir_bytes(const char *dir)
{
    char path[PATH_MAX];
    struct dirent *d;
    struct stat st;
    off_t sum = 0;
    DIR *dp = opendir(dir);

    if (dp == NULL)
        return -1;
    while ((d = readdir(dp)) != NULL) {
        if (d->d_name[0] == '.')
            continue;
        path_in(path, sizeof path, dir, d->d_name);
        if (stat(path, &st) == 0)
            sum += st.st_size;
    }
    closedir(dp);
    return sum;
}

static void
keep(struct fixture *f, ng_redis_embed *e)
{
    int i = f->live[0] == NULL ? 0 : 1;

    assert_null(f->live[i]);
    f->live[i] = e;
}

/* Stops and frees a handle of keep(). */
static void
finish(struct fixture *f, ng_redis_embed *e)
{
    int i;

    for (i = 0; i < 2; i++)
        if (f->live[i] == e)
            f->live[i] = NULL;
    ng_redis_embed_free(e);
}

static ng_redis_embed *
start_ok(struct fixture *f, ng_redis_embed_fsync fsync)
{
    ng_redis_embed *e = NULL;
    char err[NG_REDIS_EMBED_ERROR_BYTES];
    ng_err rc = ng_redis_embed_start(&e, f->data, fsync, err, sizeof err);

    if (rc != NG_OK)
        print_error("start: %s: %s\n", ng_strerror(rc), err);
    assert_int_equal(rc, NG_OK);
    assert_non_null(e);
    keep(f, e);
    return e;
}

/* A stand-in redis-server: a shell script alone in <tmp>/bin, with PATH pointing there during start. */
static ng_err
start_with_fake(struct fixture *f, const char *script, char *err, size_t errlen)
{
    char bin[PATH_MAX], exe[PATH_MAX], *old = getenv("PATH") ? strdup(getenv("PATH")) : NULL;
    ng_redis_embed *e = NULL;
    ng_err rc;

    path_in(bin, sizeof bin, f->tmp, "bin");
    assert_int_equal(mkdir(bin, 0700), 0);
    path_in(exe, sizeof exe, bin, "redis-server");
    write_file(exe, script, 0755);
    assert_int_equal(setenv("PATH", bin, 1), 0);
    rc = ng_redis_embed_start(&e, f->data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, errlen);
    if (old != NULL)
        setenv("PATH", old, 1);
    else
        unsetenv("PATH");
    free(old);
    assert_null(e);
    finish(f, e);
    return rc;
}

static void
test_start_answers_on_socket_only(void **state)
{
    struct fixture *f = *state;
    char path[PATH_MAX], aof[PATH_MAX];
    ng_redis_embed_status st;
    ng_redis_embed *e = start_ok(f, NG_REDIS_EMBED_FSYNC_ALWAYS);
    redisContext *c = connect_to(e);
    struct stat sb;
    off_t before;

    assert_true(strncmp(ng_redis_embed_url(e), "unix:/", 6) == 0);
    assert_non_null(strstr(ng_redis_embed_url(e), "/data/redis/redis.sock"));
    assert_int_equal(reply_is(c, "PONG", "PING"), 0);
    /* No TCP at all. */
    assert_int_equal(reply_is(c, "0", "CONFIG GET port"), 0);
    assert_int_equal(reply_is(c, "yes", "CONFIG GET appendonly"), 0);
    assert_int_equal(reply_is(c, "always", "CONFIG GET appendfsync"), 0);
    assert_int_equal(reply_is(c, "", "CONFIG GET save"), 0);

    /* Private directory and socket. */
    path_in(path, sizeof path, f->data, "redis");
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(ng_redis_embed_url(e) + 5, &sb), 0);
    assert_true(S_ISSOCK(sb.st_mode));
    assert_int_equal(sb.st_mode & 0777, 0700);

    /* The AOF lives under the data directory and grows with a write (always: before the reply). */
    path_in(aof, sizeof aof, path, "appendonlydir");
    before = dir_bytes(aof);
    assert_true(before >= 0);
    assert_int_equal(reply_is(c, "OK", "SET %s %s", "greeting", "hello"), 0);
    assert_true(dir_bytes(aof) > before);

    ng_redis_embed_get_status(e, &st);
    assert_int_equal(st.state, NG_REDIS_EMBED_RUNNING);
    assert_int_equal(st.pid, ng_redis_embed_pid(e));
    assert_true(st.pid > 0);
    assert_int_equal(st.restarts, 0);
    assert_int_equal(st.failures, 0);
    assert_string_equal(st.last_error, "");
    redisFree(c);
    finish(f, e);
}

static void
test_fsync_setting(void **state)
{
    static const char *const names[] = {"everysec", "always", "no"};
    struct fixture *f = *state;
    int i;

    for (i = 0; i < 3; i++) {
        ng_redis_embed *e = start_ok(f, (ng_redis_embed_fsync)i);
        redisContext *c = connect_to(e);

        assert_int_equal(reply_is(c, names[i], "CONFIG GET appendfsync"), 0);
        redisFree(c);
        finish(f, e);
    }
}

static void
test_kill9_restarts_with_data(void **state)
{
    struct fixture *f = *state;
    ng_redis_embed *e = start_ok(f, NG_REDIS_EMBED_FSYNC_ALWAYS);
    redisContext *c = connect_to(e);
    ng_redis_embed_status st;
    pid_t first = ng_redis_embed_pid(e), now = 0;
    long long t0;

    assert_int_equal(reply_is(c, "OK", "SET %s %s", "kept", "across kill -9"), 0);
    redisFree(c);
    assert_int_equal(kill(first, SIGKILL), 0);
    t0 = now_ms();
    /* RUNNING once the supervisor has seen the new server answer (a client may see it a poll earlier). */
    while (now_ms() - t0 < 5000) {
        ng_redis_embed_get_status(e, &st);
        if (st.state == NG_REDIS_EMBED_RUNNING && st.pid != first)
            break;
        sleep_ms(10);
    }
    now = ng_redis_embed_pid(e);
    assert_true(now != 0 && now != first);
    assert_true(answers(e));
    c = connect_to(e);
    assert_int_equal(reply_is(c, "across kill -9", "GET %s", "kept"), 0);
    redisFree(c);
    assert_int_equal(ng_redis_embed_restarts(e), 1);
    ng_redis_embed_get_status(e, &st);
    assert_int_equal(st.state, NG_REDIS_EMBED_RUNNING);
    assert_int_equal(st.failures, 1);
    assert_non_null(strstr(st.last_error, "killed by signal 9"));
    finish(f, e);
}

static void
test_stop(void **state)
{
    struct fixture *f = *state;
    char log[PATH_MAX], text[1 << 16];
    ng_redis_embed_status st;
    sigset_t term, old;
    ng_redis_embed *e;
    pid_t pid;
    struct stat sb;
    char sock[PATH_MAX];

    /* A gateway that handles SIGTERM through sigwait blocks it; its server must still get it. */
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &term, &old), 0);
    e = start_ok(f, NG_REDIS_EMBED_FSYNC_EVERYSEC);
    assert_int_equal(pthread_sigmask(SIG_SETMASK, &old, NULL), 0);
    pid = ng_redis_embed_pid(e);
    snprintf(sock, sizeof sock, "%s", ng_redis_embed_url(e) + 5);
    assert_int_equal(stat(sock, &sb), 0);

    ng_redis_embed_stop(e);
    assert_int_equal(kill(pid, 0), -1);
    assert_int_equal(errno, ESRCH);
    assert_int_equal(stat(sock, &sb), -1);
    assert_int_equal(ng_redis_embed_pid(e), 0);
    ng_redis_embed_get_status(e, &st);
    assert_int_equal(st.state, NG_REDIS_EMBED_STOPPED);
    /* SIGTERM, not SIGKILL: redis-server said goodbye. */
    path_in(log, sizeof log, f->data, "redis/redis.log");
    read_file(log, text, sizeof text);
    assert_non_null(strstr(text, "ready to exit, bye bye"));

    ng_redis_embed_stop(e);
    ng_redis_embed_stop(NULL);
    finish(f, e);
    ng_redis_embed_free(NULL);

    /* The lock went with it. */
    e = start_ok(f, NG_REDIS_EMBED_FSYNC_EVERYSEC);
    finish(f, e);
}

static void
test_second_start_refused(void **state)
{
    struct fixture *f = *state;
    char err[NG_REDIS_EMBED_ERROR_BYTES];
    ng_redis_embed *a = start_ok(f, NG_REDIS_EMBED_FSYNC_EVERYSEC), *b = NULL;
    pid_t pid = ng_redis_embed_pid(a);
    int i;

    for (i = 0; i < 2; i++) {
        /* Twice: a refused attempt must not have released the owner's lock on its way out. */
        assert_int_equal(ng_redis_embed_start(&b, f->data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err),
                         NG_ERR_EXISTS);
        assert_null(b);
        assert_non_null(strstr(err, "another noisegate owns this data directory's Redis"));
    }
    assert_true(answers(a));
    assert_int_equal(ng_redis_embed_pid(a), pid);
    finish(f, a);
    b = start_ok(f, NG_REDIS_EMBED_FSYNC_EVERYSEC);
    finish(f, b);
}

/* The --hold mode of this binary, on a pipe pair; *out reads its stdout, *in is its stdin. */
static pid_t
spawn_holder(const char *data, int *out, int *in)
{
    char self[PATH_MAX];
    char *argv[] = {self, (char *)"--hold", (char *)data, NULL};
    posix_spawn_file_actions_t fa;
    int to[2], from[2];
    ssize_t n;
    pid_t pid;

    n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = '\0';
    assert_int_equal(pipe(to), 0);
    assert_int_equal(pipe(from), 0);
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from[1], 1);
    posix_spawn_file_actions_addclose(&fa, to[1]);
    posix_spawn_file_actions_addclose(&fa, from[0]);
    assert_int_equal(posix_spawn(&pid, self, &fa, NULL, argv, environ), 0);
    posix_spawn_file_actions_destroy(&fa);
    close(to[0]);
    close(from[1]);
    *out = from[0];
    *in = to[1];
    return pid;
}

/* Whether pid is gone or a zombie: either way it holds nothing any more. */
static int
gone(long pid)
{
    char path[64], buf[512];
    const char *p;
    FILE *fp;

    if (kill((pid_t)pid, 0) != 0)
        return 1;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    fp = fopen(path, "r");
    if (fp == NULL)
        return 1;
    p = fgets(buf, sizeof buf, fp);
    fclose(fp);
    p = p != NULL ? strrchr(buf, ')') : NULL;
    return p != NULL && p[2] == 'Z';
}

static void
test_orphaned_server_is_stopped(void **state)
{
    struct fixture *f = *state;
    char line[64], err[NG_REDIS_EMBED_ERROR_BYTES], url[PATH_MAX + 32];
    ng_redis_embed *e = NULL;
    ng_redis_embed_status st;
    redisContext *c = NULL;
    int out, in, status;
    long orphan = 0;
    ssize_t n;
    pid_t holder = spawn_holder(f->data, &out, &in);

    f->holder = holder;
    n = read(out, line, sizeof line - 1);
    assert_true(n > 0);
    line[n] = '\0';
    orphan = strtol(line, NULL, 10);
    assert_true(orphan > 0);
    snprintf(url, sizeof url, "unix:%s/redis/redis.sock", f->data);
    assert_int_equal(ng_redis_connect(&c, url, 2000), NG_OK);
    assert_int_equal(reply_is(c, "OK", "SET %s %s", "written", "before the gateway died"), 0);
    redisFree(c);

    /* While its gateway lives, another process of the same program may not touch its server. */
    assert_int_equal(ng_redis_embed_start(&e, f->data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err), NG_ERR_EXISTS);
    assert_non_null(strstr(err, "another noisegate owns this data directory's Redis"));
    assert_false(gone(orphan));

    /* The gateway dies without stopping its server. */
    assert_int_equal(kill(holder, SIGKILL), 0);
    assert_int_equal(waitpid(holder, &status, 0), holder);
    f->holder = 0;
    close(out);
    close(in);
    assert_false(gone(orphan));

    /* The next start stops the orphan (cleanly: its data is there) and runs a server of its own. */
    e = start_ok(f, NG_REDIS_EMBED_FSYNC_EVERYSEC);
    ng_redis_embed_get_status(e, &st);
    assert_int_equal(st.orphan_stopped, orphan);
    assert_true(gone(orphan));
    assert_true(ng_redis_embed_pid(e) != (pid_t)orphan);
    c = connect_to(e);
    assert_int_equal(reply_is(c, "before the gateway died", "GET %s", "written"), 0);
    redisFree(c);
    finish(f, e);
}

static void
test_missing_redis_server(void **state)
{
    struct fixture *f = *state;
    char empty[PATH_MAX], err[NG_REDIS_EMBED_ERROR_BYTES], *old = strdup(getenv("PATH") ? getenv("PATH") : "");
    ng_redis_embed *e = NULL;
    struct stat sb;
    ng_err rc;

    assert_non_null(old);
    path_in(empty, sizeof empty, f->tmp, "empty");
    assert_int_equal(mkdir(empty, 0700), 0);
    assert_int_equal(setenv("PATH", empty, 1), 0);
    rc = ng_redis_embed_start(&e, f->data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err);
    assert_int_equal(setenv("PATH", old, 1), 0);
    free(old);
    assert_int_equal(rc, NG_ERR_NOT_FOUND);
    assert_null(e);
    assert_non_null(strstr(err, "Debian package redis-server"));
    /* Nothing was created for a server that cannot exist. */
    assert_int_equal(stat(f->data, &sb), -1);
}

static void
test_stale_socket_removed(void **state)
{
    struct fixture *f = *state;
    struct sockaddr_un sa;
    char dir[PATH_MAX];
    ng_redis_embed *e;
    struct stat sb;
    int fd;

    /* What a killed run leaves: a socket file nobody listens on. */
    assert_int_equal(mkdir(f->data, 0700), 0);
    path_in(dir, sizeof dir, f->data, "redis");
    assert_int_equal(mkdir(dir, 0700), 0);
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    path_in(sa.sun_path, sizeof sa.sun_path, dir, "redis.sock");
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    close(fd);
    assert_int_equal(stat(sa.sun_path, &sb), 0);

    e = start_ok(f, NG_REDIS_EMBED_FSYNC_EVERYSEC);
    assert_true(answers(e));
    finish(f, e);
}

static void
test_data_dir_is_a_file(void **state)
{
    struct fixture *f = *state;
    char err[NG_REDIS_EMBED_ERROR_BYTES];
    ng_redis_embed *e = NULL;

    write_file(f->data, "not a directory\n", 0600);
    assert_int_equal(ng_redis_embed_start(&e, f->data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err), NG_ERR_IO);
    assert_null(e);
    assert_non_null(strstr(err, f->data));
    assert_non_null(strstr(err, "not a directory"));
}

static void
test_socket_path_too_long(void **state)
{
    struct fixture *f = *state;
    char data[PATH_MAX], err[NG_REDIS_EMBED_ERROR_BYTES];
    ng_redis_embed *e = NULL;

    snprintf(data, sizeof data, "%s/%0100d", f->tmp, 0);
    assert_int_equal(ng_redis_embed_start(&e, data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err), NG_ERR_TOO_LARGE);
    assert_null(e);
    assert_non_null(strstr(err, "unix socket path"));
}

/* Garbage for a manifest: redis-server refuses to start on it. */
static void
spoil_manifest(const char *data, char *saved, size_t savedlen)
{
    char dir[PATH_MAX], path[PATH_MAX];

    path_in(dir, sizeof dir, data, "redis/appendonlydir");
    mkdir(dir, 0700);
    path_in(path, sizeof path, dir, "appendonly.aof.manifest");
    if (saved != NULL)
        read_file(path, saved, savedlen);
    write_file(path, "garbage\n", 0600);
}

static void
restore_manifest(const char *data, const char *saved)
{
    char path[PATH_MAX];

    path_in(path, sizeof path, data, "redis/appendonlydir/appendonly.aof.manifest");
    write_file(path, saved, 0600);
}

static void
test_server_refuses_to_start(void **state)
{
    struct fixture *f = *state;
    char dir[PATH_MAX], sock[PATH_MAX], err[NG_REDIS_EMBED_ERROR_BYTES];
    ng_redis_embed *e = NULL;
    struct stat sb;
    long long t0;

    assert_int_equal(mkdir(f->data, 0700), 0);
    path_in(dir, sizeof dir, f->data, "redis");
    assert_int_equal(mkdir(dir, 0700), 0);
    spoil_manifest(f->data, NULL, 0);
    t0 = now_ms();
    assert_int_equal(ng_redis_embed_start(&e, f->data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err),
                     NG_ERR_UNAVAILABLE);
    assert_true(now_ms() - t0 < 5000);
    assert_null(e);
    assert_non_null(strstr(err, "exited with status 1 before answering PING"));
    /* The log's last words say why. */
    assert_non_null(strstr(err, "Invalid AOF manifest file format"));
    path_in(sock, sizeof sock, dir, "redis.sock");
    assert_int_equal(stat(sock, &sb), -1);
    /* Nothing holds the directory: the same failure again, not NG_ERR_EXISTS. */
    assert_int_equal(ng_redis_embed_start(&e, f->data, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err),
                     NG_ERR_UNAVAILABLE);
}

static void
test_child_is_clean(void **state)
{
    struct fixture *f = *state;
    char script[4 * PATH_MAX], text[8192], env[PATH_MAX], fds[PATH_MAX], sig[PATH_MAX];
    char err[NG_REDIS_EMBED_ERROR_BYTES];
    unsigned long long blocked, ignored;
    sigset_t set, old;
    int fd;
    ng_err rc;

    path_in(env, sizeof env, f->tmp, "env.txt");
    path_in(fds, sizeof fds, f->tmp, "fds.txt");
    path_in(sig, sizeof sig, f->tmp, "sig.txt");
    snprintf(script, sizeof script,
             "#!/bin/sh\n"
             "env > '%s'\n"
             "if [ -e /proc/$$/fd/%d ]; then echo leaked; else echo closed; fi > '%s'\n"
             /* Builtins only: while dash forks a command it blocks every signal in itself. */
             "while read -r k v; do case $k in SigBlk:|SigIgn:) echo \"$k $v\";; esac; done < /proc/$$/status > '%s'\n"
             "echo 'fake: cannot start' >&2\n"
             "exit 3\n",
             env, LEAK_FD, fds, sig);
    /* Whatever the gateway has around when it starts the server must not reach it. */
    fd = open("/dev/null", O_RDONLY);
    assert_true(fd >= 0);
    assert_int_equal(dup2(fd, LEAK_FD), LEAK_FD);
    close(fd);
    assert_int_equal(setenv("NG_EMBED_TEST_SECRET", "hunter2", 1), 0);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGUSR1);
    assert_int_equal(pthread_sigmask(SIG_BLOCK, &set, &old), 0);
    assert_true(signal(SIGUSR2, SIG_IGN) != SIG_ERR);

    rc = start_with_fake(f, script, err, sizeof err);

    signal(SIGUSR2, SIG_DFL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    unsetenv("NG_EMBED_TEST_SECRET");
    close(LEAK_FD);

    assert_int_equal(rc, NG_ERR_UNAVAILABLE);
    assert_non_null(strstr(err, "exited with status 3 before answering PING"));
    assert_non_null(strstr(err, "fake: cannot start"));
    read_file(env, text, sizeof text);
    assert_null(strstr(text, "NG_EMBED_TEST_SECRET"));
    assert_non_null(strstr(text, "PATH=/usr/local/bin:/usr/bin:/bin"));
    read_file(fds, text, sizeof text);
    assert_string_equal(text, "closed\n");
    /*
     * Nothing blocked, and none of signals 1-31 ignored (glibc's posix_spawn
     * leaves its own internal signals 32 and 33 ignored; redis uses neither).
     */
    read_file(sig, text, sizeof text);
    assert_int_equal(sscanf(text, "SigBlk: %llx SigIgn: %llx", &blocked, &ignored), 2);
    assert_int_equal(blocked, 0);
    assert_int_equal(ignored & 0x7fffffffULL, 0);
}

static void
test_silent_server_times_out(void **state)
{
    struct fixture *f = *state;
    char err[NG_REDIS_EMBED_ERROR_BYTES];
    const char *p;
    long long t0 = now_ms();
    ng_err rc = start_with_fake(f, "#!/bin/sh\nexec sleep 60\n", err, sizeof err);
    long pid;

    assert_int_equal(rc, NG_ERR_UNAVAILABLE);
    assert_true(now_ms() - t0 < NG_REDIS_EMBED_START_MS + 3000);
    assert_non_null(strstr(err, "did not answer PING within 10 s"));
    p = strstr(err, "(pid ");
    assert_non_null(p);
    pid = strtol(p + 5, NULL, 10);
    assert_true(pid > 0);
    /* Killed and reaped, not left behind. */
    assert_int_equal(kill((pid_t)pid, 0), -1);
}

static ng_redis_embed_state
wait_state(ng_redis_embed *e, ng_redis_embed_state want, long ms, ng_redis_embed_status *st)
{
    long long t0 = now_ms();

    do {
        ng_redis_embed_get_status(e, st);
        if (st->state == want)
            break;
        sleep_ms(10);
    } while (now_ms() - t0 < ms);
    return st->state;
}

static void
test_crash_loop_backs_off(void **state)
{
    struct fixture *f = *state;
    char saved[4096];
    ng_redis_embed_status st;
    ng_redis_embed *e = start_ok(f, NG_REDIS_EMBED_FSYNC_ALWAYS);
    redisContext *c = connect_to(e);
    long long t0;

    assert_int_equal(reply_is(c, "OK", "SET %s %s", "survivor", "yes"), 0);
    redisFree(c);

    /* Every restart now fails at once: the supervisor must report it and slow down, not spin. */
    spoil_manifest(f->data, saved, sizeof saved);
    t0 = now_ms();
    assert_int_equal(kill(ng_redis_embed_pid(e), SIGKILL), 0);
    assert_int_equal(wait_state(e, NG_REDIS_EMBED_CRASH_LOOP, 3000, &st), NG_REDIS_EMBED_CRASH_LOOP);
    /* 100 + 200 ms of backoff came before the third failure. */
    assert_true(now_ms() - t0 >= 300);
    assert_true(st.failures >= NG_REDIS_EMBED_CRASH_LOOP_FAILURES);
    assert_true(st.restarts >= 2 && st.restarts <= 4);
    assert_true(st.next_delay_ms >= 400);
    assert_int_equal(st.pid, 0);
    assert_non_null(strstr(st.last_error, "Invalid AOF manifest file format"));

    /* Repaired, it comes back by itself, data intact. */
    restore_manifest(f->data, saved);
    assert_int_equal(wait_state(e, NG_REDIS_EMBED_RUNNING, 4000, &st), NG_REDIS_EMBED_RUNNING);
    c = connect_to(e);
    assert_int_equal(reply_is(c, "yes", "GET %s", "survivor"), 0);
    redisFree(c);

    /* A stop in the middle of a backoff does not wait it out. */
    spoil_manifest(f->data, saved, sizeof saved);
    assert_int_equal(kill(ng_redis_embed_pid(e), SIGKILL), 0);
    assert_int_equal(wait_state(e, NG_REDIS_EMBED_CRASH_LOOP, 5000, &st), NG_REDIS_EMBED_CRASH_LOOP);
    t0 = now_ms();
    ng_redis_embed_stop(e);
    assert_true(now_ms() - t0 < 1000);
    ng_redis_embed_get_status(e, &st);
    assert_int_equal(st.state, NG_REDIS_EMBED_STOPPED);
    finish(f, e);
}

static void
test_bad_arguments(void **state)
{
    struct fixture *f = *state;
    char err[NG_REDIS_EMBED_ERROR_BYTES];
    ng_redis_embed *e = NULL;

    assert_int_equal(ng_redis_embed_start(&e, "", NG_REDIS_EMBED_FSYNC_NO, err, sizeof err), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_redis_embed_start(&e, f->data, (ng_redis_embed_fsync)3, err, sizeof err), NG_ERR_INVALID_ARG);
    /* No room for a message is fine. */
    assert_int_equal(ng_redis_embed_start(&e, "", NG_REDIS_EMBED_FSYNC_NO, NULL, 0), NG_ERR_INVALID_ARG);
    assert_null(e);
}

/* The gateway stand-in of test_orphaned_server_is_stopped. */
static int
hold(const char *data)
{
    char err[NG_REDIS_EMBED_ERROR_BYTES], buf[16];
    ng_redis_embed *e = NULL;

    if (ng_redis_embed_start(&e, data, NG_REDIS_EMBED_FSYNC_ALWAYS, err, sizeof err) != NG_OK) {
        fprintf(stderr, "hold: %s\n", err);
        return 1;
    }
    printf("%ld\n", (long)ng_redis_embed_pid(e));
    fflush(stdout);
    while (read(0, buf, sizeof buf) > 0)
        ;
    ng_redis_embed_free(e);
    return 0;
}

#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)

int
main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_start_answers_on_socket_only),
        T(test_fsync_setting),
        T(test_kill9_restarts_with_data),
        T(test_stop),
        T(test_second_start_refused),
        T(test_orphaned_server_is_stopped),
        T(test_missing_redis_server),
        T(test_stale_socket_removed),
        T(test_data_dir_is_a_file),
        T(test_socket_path_too_long),
        T(test_server_refuses_to_start),
        T(test_child_is_clean),
        T(test_silent_server_times_out),
        T(test_crash_loop_backs_off),
        T(test_bad_arguments),
    };

    /* A test talks to servers it kills: a write to a dead one must be an error, not the end. */
    signal(SIGPIPE, SIG_IGN);
    if (argc == 3 && strcmp(argv[1], "--hold") == 0)
        return hold(argv[2]);
    return cmocka_run_group_tests_name("redis_embed", tests, NULL, NULL);
}

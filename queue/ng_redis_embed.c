/*
 * ng_redis_embed.c: the private redis-server under the data directory, and
 * the thread that keeps it running. See ng_redis_embed.h for the contract.
 *
 * The supervisor thread owns every start, the first included, so the first
 * start and the restarts share one code path; ng_redis_embed_start waits
 * for the first outcome. The child's pid is published in e->pid under the
 * mutex and cleared there only when the child is reaped, and the thread
 * waits for an exit with waitid(WNOWAIT) before reaping: so whoever holds
 * the mutex and sees a pid may kill() it without hitting a recycled pid.
 */
#define _GNU_SOURCE /* F_OFD_SETLK, posix_spawn_file_actions_addclosefrom_np */

#include "ng_redis_embed.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#define SOCK_BYTES sizeof(((struct sockaddr_un *)0)->sun_path)

/* An orphaned server must keep the lock, which only a lock per open file description allows. */
#ifdef F_OFD_SETLK
#define LOCK_CMD F_OFD_SETLK
#else
#define LOCK_CMD F_SETLK /* per process: a second start in the same process is not refused */
#endif

#define LOG_ROTATE_BYTES ((off_t)64 << 20)

enum {
    POLL_MS = 20,          /* between PINGs while a server starts */
    PING_TIMEOUT_MS = 500, /* one PING; a starting server answers in microseconds or not at all */
    LOCK_FD_MIN = 10,      /* the child's file actions rewrite 0-3: keep the lock clear of them */
    CHILD_LOCK_FD = 3,
    TAIL_LINES = 3,
    TAIL_BYTES = 4096,
};

/* How a server's run ended. */
enum outcome {
    READY,    /* answered PING (and later died) */
    EXITED,   /* died before answering */
    TIMEOUT,  /* alive but silent too long: killed */
    STOPPING, /* ng_redis_embed_stop came first */
};

struct run {
    pid_t pid; /* 0: posix_spawn failed with spawn_err */
    int spawn_err;
    off_t log_at; /* where this run's lines start in redis.log */
    enum outcome how;
    int waited_ms;      /* the limit that TIMEOUT hit */
    int reaped, status; /* waitpid's, when reaped */
    long long up_ms;    /* READY: how long it served */
};

struct ng_redis_embed {
    /* Set before the thread starts, then read-only. */
    char exe[PATH_MAX];
    char dir[PATH_MAX];
    char log[PATH_MAX];
    char pidfile[PATH_MAX];
    char sock[SOCK_BYTES];
    char url[SOCK_BYTES + 5];
    ng_redis_embed_fsync fsync;
    int lock_fd, owner_fd;
    pid_t orphan_stopped;
    pthread_t thread;

    pthread_mutex_t mu;
    pthread_cond_t cv; /* broadcast on every change below */
    pid_t pid;         /* the unreaped server, 0 if none */
    int stopping;
    int first; /* 0 while the first server starts, 1 it answered, -1 it failed */
    ng_err first_err;
    int thread_done;
    int stop_state; /* 0, 1 a stop in progress, 2 stopped */
    ng_redis_embed_state state;
    unsigned restarts, failures, next_delay_ms;
    struct timespec up_since;
    char last_error[NG_REDIS_EMBED_ERROR_BYTES];
};

static ng_err fail(char *err, size_t errlen, ng_err code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static ng_err
fail(char *err, size_t errlen, ng_err code, const char *fmt, ...)
{
    va_list ap;

    if (errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}

/* dir/name into out; -1 if it does not fit. */
static int
join(char *out, size_t outlen, const char *dir, const char *name)
{
    int n = snprintf(out, outlen, "%s/%s", dir, name);

    return n < 0 || (size_t)n >= outlen ? -1 : 0;
}

/* snprintf for messages, where truncation is acceptable. */
static void put(char *out, size_t outlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
put(char *out, size_t outlen, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(out, outlen, fmt, ap);
    va_end(ap);
}

static void
deadline_in(struct timespec *ts, long ms)
{
    clock_gettime(CLOCK_MONOTONIC, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

static long long
ms_since(const struct timespec *t0)
{
    struct timespec t;

    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)(t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000L;
}

/*
 * Looks in PATH once, so that restarts do not depend on the environment
 * later. Relative entries are skipped: what they find depends on the
 * current directory.
 */
static ng_err
find_exe(char *out, size_t outlen)
{
    const char *path = getenv("PATH"), *p, *end;
    struct stat st;

    if (path == NULL)
        path = "/usr/local/bin:/usr/bin:/bin";
    for (p = path;; p = end + 1) {
        int n;

        end = strchr(p, ':');
        if (end == NULL)
            end = p + strlen(p);
        n = snprintf(out, outlen, "%.*s/redis-server", (int)(end - p), p);
        if (p[0] == '/' && n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode) &&
            access(out, X_OK) == 0)
            return NG_OK;
        if (*end == '\0')
            break;
    }
    out[0] = '\0';
    return NG_ERR_NOT_FOUND;
}

/* mkdir -p, each new level private to the owner. */
static ng_err
make_dirs(const char *path, char *err, size_t errlen)
{
    char buf[PATH_MAX];
    size_t i, n = strlen(path);

    if (n >= sizeof buf)
        return fail(err, errlen, NG_ERR_TOO_LARGE, "data_dir: path too long");
    memcpy(buf, path, n + 1);
    for (i = 1; i <= n; i++) {
        if (buf[i] != '/' && buf[i] != '\0')
            continue;
        buf[i] = '\0';
        if (mkdir(buf, 0700) != 0 && errno != EEXIST)
            return fail(err, errlen, NG_ERR_IO, "%s: cannot create the directory: %s", buf, strerror(errno));
        buf[i] = path[i];
    }
    return NG_OK;
}

/* <data_dir>/redis, absolute, mode 0700, and the names of what lives in it. */
static ng_err
prepare_dir(ng_redis_embed *e, const char *data_dir, char *err, size_t errlen)
{
    char real[PATH_MAX];
    struct stat st;
    ng_err rc;

    rc = make_dirs(data_dir, err, errlen);
    if (rc)
        return rc;
    if (realpath(data_dir, real) == NULL)
        return fail(err, errlen, NG_ERR_IO, "%s: %s", data_dir, strerror(errno));
    if (stat(real, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(err, errlen, NG_ERR_IO, "data_dir %s: not a directory", real);
    if (join(e->dir, sizeof e->dir, real, "redis") != 0 || join(e->log, sizeof e->log, e->dir, "redis.log") != 0 ||
        join(e->pidfile, sizeof e->pidfile, e->dir, "redis.pid") != 0)
        return fail(err, errlen, NG_ERR_TOO_LARGE, "data_dir %s: path too long", real);
    if (join(e->sock, sizeof e->sock, e->dir, "redis.sock") != 0)
        return fail(err, errlen, NG_ERR_TOO_LARGE,
                    "%s/redis.sock: longer than the %zu bytes of a unix socket path; choose a shorter data_dir", e->dir,
                    SOCK_BYTES - 1);
    snprintf(e->url, sizeof e->url, "unix:%s", e->sock);

    if (mkdir(e->dir, 0700) != 0 && errno != EEXIST)
        return fail(err, errlen, NG_ERR_IO, "%s: cannot create the directory: %s", e->dir, strerror(errno));
    if (lstat(e->dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return fail(err, errlen, NG_ERR_IO, "%s: not a directory", e->dir);
    if (st.st_uid != geteuid())
        return fail(err, errlen, NG_ERR_IO, "%s: owned by uid %ld, not by this process's", e->dir, (long)st.st_uid);
    /* The socket's own permission does not protect the AOF beside it. */
    if ((st.st_mode & 07777) != 0700 && chmod(e->dir, 0700) != 0)
        return fail(err, errlen, NG_ERR_IO, "%s: cannot make it private: %s", e->dir, strerror(errno));
    return NG_OK;
}

/* The pid in redis.pid, 0 if there is none. */
static long
read_pidfile(const char *path)
{
    char buf[32];
    long pid = 0;
    ssize_t n, i;
    int fd = open(path, O_RDONLY | O_CLOEXEC);

    if (fd < 0)
        return 0;
    n = read(fd, buf, sizeof buf - 1);
    close(fd);
    for (i = 0; i < n && buf[i] >= '0' && buf[i] <= '9' && pid < 100000000L; i++)
        pid = pid * 10 + (buf[i] - '0');
    return pid;
}

/* readlink into out (NUL-terminated); 0 on success. */
static int
link_of(char *out, size_t cap, const char *fmt, long pid, int fd)
{
    char path[64];
    ssize_t n;

    snprintf(path, sizeof path, fmt, pid, fd);
    n = readlink(path, out, cap - 1);
    if (n < 0 || (size_t)n >= cap - 1)
        return -1;
    out[n] = '\0';
    return 0;
}

/*
 * Whether pid is the redis-server that holds this directory's lock: the
 * program we would run (Debian's redis-server is a link to redis-check-rdb,
 * so compared resolved), with our lock file as the child's lock
 * descriptor. Anything else, or anything /proc will not tell, is not ours
 * to stop.
 */
static int
our_server(const ng_redis_embed *e, long pid, const char *lock_path)
{
    char exe[PATH_MAX], ours[PATH_MAX], held[PATH_MAX];

    if (link_of(exe, sizeof exe, "/proc/%ld/exe", pid, 0) != 0 || realpath(e->exe, ours) == NULL ||
        strcmp(exe, ours) != 0)
        return 0;
    return link_of(held, sizeof held, "/proc/%ld/fd/%d", pid, CHILD_LOCK_FD) == 0 && strcmp(held, lock_path) == 0;
}

/*
 * SIGTERM (a clean shutdown writes the AOF; SIGCONT in case it was stopped),
 * SIGKILL after NG_REDIS_EMBED_STOP_MS, until the lock on fd is ours: 0
 * then. The lock, not the process, is what is waited for: an orphan that
 * exited may stay a zombie for long where nothing reaps (a container without
 * an init). Nobody else can take the lock meanwhile: we hold the owner lock.
 */
static int
stop_orphan(long pid, int fd)
{
    int i, steps = NG_REDIS_EMBED_STOP_MS / POLL_MS;
    struct flock fl;

    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (kill((pid_t)pid, SIGTERM) != 0 && errno != ESRCH)
        return -1;
    kill((pid_t)pid, SIGCONT);
    for (i = 0; i < 2 * steps; i++) {
        struct timespec ts = {0, POLL_MS * 1000000L};

        if (fcntl(fd, LOCK_CMD, &fl) == 0)
            return 0;
        if (i == steps)
            kill((pid_t)pid, SIGKILL);
        nanosleep(&ts, NULL);
    }
    return -1;
}

/*
 * Opens dir/name, above the descriptors a child's file actions rewrite, and
 * tries its lock: 0 when taken, EAGAIN when another holds it (*fd open in
 * both cases), else an errno (nothing open).
 */
static int
try_lock(const ng_redis_embed *e, const char *name, char path[PATH_MAX], int *fd)
{
    struct flock fl;
    int saved;

    if (join(path, PATH_MAX, e->dir, name) != 0)
        return ENAMETOOLONG;
    *fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (*fd < 0)
        return errno;
    if (*fd < LOCK_FD_MIN) {
        int high = fcntl(*fd, F_DUPFD_CLOEXEC, LOCK_FD_MIN);

        saved = errno;
        close(*fd);
        if (high < 0)
            return saved;
        *fd = high;
    }
    memset(&fl, 0, sizeof fl);
    fl.l_type = F_WRLCK;
    fl.l_whence = SEEK_SET;
    if (fcntl(*fd, LOCK_CMD, &fl) == 0)
        return 0;
    saved = errno == EACCES ? EAGAIN : errno;
    if (saved != EAGAIN)
        close(*fd);
    return saved;
}

/*
 * Two locks. "owner" is held by the process that runs the server (the
 * gateway, or a CLI command) and by nothing else: close-on-exec, never
 * inherited. "lock" is held by it and inherited by the server. So with the
 * owner lock free and "lock" held, the holder can only be a server whose
 * gateway died (killed with SIGKILL): it is stopped, and a crashed gateway
 * restarts by itself. With the owner lock held, a noisegate runs here, and
 * nothing is touched.
 */
static ng_err
take_lock(ng_redis_embed *e, char *err, size_t errlen)
{
    char owner[PATH_MAX], path[PATH_MAX];
    int ofd = -1, fd = -1, rc;
    long pid;

    rc = try_lock(e, "owner", owner, &ofd);
    if (rc == EAGAIN) {
        close(ofd);
        return fail(err, errlen, NG_ERR_EXISTS, "another noisegate owns this data directory's Redis (%s is locked)",
                    owner);
    }
    if (rc != 0)
        return fail(err, errlen, rc == ENAMETOOLONG ? NG_ERR_TOO_LARGE : NG_ERR_IO, "%s/owner: cannot lock: %s", e->dir,
                    strerror(rc));
    rc = try_lock(e, "lock", path, &fd);
    if (rc == EAGAIN) {
        pid = read_pidfile(e->pidfile);
        if (pid > 0 && our_server(e, pid, path) && stop_orphan(pid, fd) == 0) {
            e->orphan_stopped = (pid_t)pid;
            rc = 0;
        } else {
            close(fd);
            close(ofd);
            return fail(err, errlen, NG_ERR_EXISTS,
                        "%s is held, though no noisegate owns this data directory, by a process that is not the "
                        "redis-server of redis.pid (%ld) or did not stop: stop it",
                        path, pid);
        }
    }
    if (rc != 0) {
        close(ofd);
        return fail(err, errlen, rc == ENAMETOOLONG ? NG_ERR_TOO_LARGE : NG_ERR_IO, "%s/lock: cannot lock: %s", e->dir,
                    strerror(rc));
    }
    e->lock_fd = fd;
    e->owner_fd = ofd;
    return NG_OK;
}

/* Keeps one old generation: redis-server appends to its log forever, and a crash loop logs a lot. */
static void
rotate_log(const char *log)
{
    char old[PATH_MAX + 2];
    struct stat st;

    if (stat(log, &st) != 0 || st.st_size < LOG_ROTATE_BYTES)
        return;
    put(old, sizeof old, "%s.1", log);
    (void)rename(log, old);
}

static off_t
log_size(const char *log)
{
    struct stat st;

    return stat(log, &st) == 0 ? st.st_size : 0;
}

/*
 * Starts one server. The child gets the lock as fd 3 (see the header),
 * stdout and stderr on redis.log (where its early errors go before it
 * opens the log itself), nothing else; a fixed environment; default
 * signal handling, since the gateway may block or ignore signals that
 * redis-server needs; its own process group, so that a terminal's ^C
 * reaches the gateway, which stops the server after draining.
 */
static int
spawn(const ng_redis_embed *e, pid_t *pid)
{
    static const char *const fsync_names[] = {"everysec", "always", "no"};
    const char *const opts[][2] = {
        {"--port", "0"}, /* no TCP listener at all */
        {"--unixsocket", e->sock},
        {"--unixsocketperm", "700"},
        {"--dir", e->dir}, /* the AOF directory lands here */
        {"--logfile", e->log},
        {"--pidfile", e->pidfile}, /* names an orphan in the NG_ERR_EXISTS message */
        {"--appendonly", "yes"},
        {"--appendfsync", fsync_names[e->fsync]},
        {"--save", ""},        /* the AOF is the persistence: no RDB snapshots besides */
        {"--daemonize", "no"}, /* stay our child, so that we can wait for it */
    };
    const char *argv[2 * sizeof opts / sizeof opts[0] + 2];
    const char *env[] = {"PATH=/usr/local/bin:/usr/bin:/bin", NULL};
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, all;
    size_t i;
    int rc;

    *pid = 0;
    argv[0] = "redis-server";
    for (i = 0; i < sizeof opts / sizeof opts[0]; i++) {
        argv[1 + 2 * i] = opts[i][0];
        argv[2 + 2 * i] = opts[i][1];
    }
    argv[1 + 2 * i] = NULL;
    rc = posix_spawn_file_actions_init(&fa);
    if (rc)
        return rc;
    rc = posix_spawnattr_init(&attr);
    if (rc) {
        posix_spawn_file_actions_destroy(&fa);
        return rc;
    }
    rc = posix_spawn_file_actions_adddup2(&fa, e->lock_fd, CHILD_LOCK_FD);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_addopen(&fa, 1, e->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&fa, 1, 2);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (rc == 0)
        rc = posix_spawn_file_actions_addclosefrom_np(&fa, CHILD_LOCK_FD + 1);
#else
    /* Without closefrom: close what is open and not close-on-exec now. */
    for (int fd = CHILD_LOCK_FD + 1; rc == 0 && fd < 1024; fd++) {
        int flags = fcntl(fd, F_GETFD);

        if (flags >= 0 && !(flags & FD_CLOEXEC))
            rc = posix_spawn_file_actions_addclose(&fa, fd);
    }
#endif
    sigemptyset(&none);
    sigfillset(&all);
    if (rc == 0)
        rc = posix_spawnattr_setsigmask(&attr, &none);
    if (rc == 0)
        rc = posix_spawnattr_setsigdefault(&attr, &all);
    if (rc == 0)
        rc = posix_spawnattr_setpgroup(&attr, 0);
    if (rc == 0)
        rc = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    if (rc == 0)
        rc = posix_spawn(pid, e->exe, &fa, &attr, (char *const *)argv, (char *const *)env);
    if (rc != 0)
        *pid = 0;
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return rc;
}

enum { PING_NONE, PING_UP, PING_LOADING };

static int
ping(const char *sock)
{
    struct timeval tv = {0, PING_TIMEOUT_MS * 1000};
    const char *argv[] = {"PING"};
    const size_t lens[] = {4};
    redisContext *c = redisConnectUnixWithTimeout(sock, tv);
    redisReply *r;
    int res = PING_NONE;

    if (c == NULL)
        return PING_NONE;
    if (c->err == 0 && redisSetTimeout(c, tv) == REDIS_OK) {
        r = redisCommandArgv(c, 1, argv, lens);
        if (r != NULL && r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0)
            res = PING_UP;
        else if (r != NULL && r->type == REDIS_REPLY_ERROR && strncmp(r->str, "LOADING", 7) == 0)
            res = PING_LOADING;
        freeReplyObject(r);
    }
    redisFree(c);
    return res;
}

/* Whether pid has ended, without reaping it (WNOWAIT keeps the pid ours until reap). */
static int
has_exited(pid_t pid)
{
    siginfo_t si;

    memset(&si, 0, sizeof si);
    if (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) != 0)
        return errno != EINTR; /* ECHILD: someone else reaped it */
    return si.si_pid == pid;
}

static void
wait_exit(pid_t pid)
{
    siginfo_t si;

    while (waitid(P_PID, (id_t)pid, &si, WEXITED | WNOWAIT) != 0 && errno == EINTR)
        ;
}

/* Polls PING until the server answers, dies, stays silent too long, or a stop comes. */
static enum outcome
wait_ready(ng_redis_embed *e, struct run *r)
{
    struct timespec t0, until;
    int loading = 0, stopping;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        int p;

        if (has_exited(r->pid))
            return EXITED;
        p = ping(e->sock);
        if (p == PING_UP)
            return READY;
        /* A server reading a large AOF answers LOADING: it is working, give it longer. */
        if (p == PING_LOADING)
            loading = 1;
        r->waited_ms = loading ? NG_REDIS_EMBED_LOAD_MS : NG_REDIS_EMBED_START_MS;
        if (ms_since(&t0) >= r->waited_ms)
            return TIMEOUT;
        pthread_mutex_lock(&e->mu);
        deadline_in(&until, POLL_MS);
        while (!e->stopping && pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT)
            ;
        stopping = e->stopping;
        pthread_mutex_unlock(&e->mu);
        if (stopping)
            return STOPPING;
    }
}

static const char *
strip_redis_prefix(const char *line)
{
    const char *p = line;
    int spaces = 0;

    /* "16982:M 24 Nov 2026 04:17:55.727 # message": keep the message. */
    if (*p < '0' || *p > '9')
        return line;
    while (*p >= '0' && *p <= '9')
        p++;
    if (*p != ':')
        return line;
    for (; *p != '\0' && spaces < 6; p++)
        if (*p == ' ')
            spaces++;
    return spaces == 6 ? p : line;
}

/* The last TAIL_LINES non-empty lines written to the log since from, joined by " | ". */
static void
log_tail(const char *log, off_t from, char *out, size_t outlen)
{
    char buf[TAIL_BYTES + 1];
    const char *lines[TAIL_LINES];
    size_t count = 0, used = 0;
    ssize_t n, end;
    off_t size;
    int fd;

    out[0] = '\0';
    fd = open(log, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    size = lseek(fd, 0, SEEK_END);
    if (size - from > TAIL_BYTES)
        from = size - TAIL_BYTES;
    n = size > from ? pread(fd, buf, (size_t)(size - from), from) : 0;
    close(fd);
    if (n <= 0)
        return;
    buf[n] = '\0';
    for (end = n; end > 0 && count < TAIL_LINES;) {
        ssize_t start = end, text;

        while (start > 0 && buf[start - 1] != '\n')
            start--;
        buf[end] = '\0';
        while (end > start && (buf[end - 1] == '\r' || buf[end - 1] == ' ')) {
            end--;
            buf[end] = '\0';
        }
        for (text = start; text < end && (buf[text] == ' ' || buf[text] == '\t');)
            text++;
        if (end > text)
            lines[count++] = strip_redis_prefix(buf + text);
        end = start > 0 ? start - 1 : 0;
    }
    while (count > 0 && used + 1 < outlen) {
        int w = snprintf(out + used, outlen - used, "%s%s", used ? " | " : "", lines[--count]);

        if (w < 0)
            break;
        used += (size_t)w;
    }
}

/* One line on how a run ended, with the log's last words when they may say why. */
static void
describe(const ng_redis_embed *e, const struct run *r, char *out, size_t outlen)
{
    char how[128], tail[NG_REDIS_EMBED_ERROR_BYTES];
    const int killed9 = r->reaped && WIFSIGNALED(r->status) && WTERMSIG(r->status) == SIGKILL;

    if (r->pid == 0) {
        put(out, outlen, "cannot run %s: %s", e->exe, strerror(r->spawn_err));
        return;
    }
    if (!r->reaped)
        put(how, sizeof how, "ended (status unknown: SIGCHLD ignored or reaped elsewhere)");
    else if (WIFEXITED(r->status))
        put(how, sizeof how, "exited with status %d", WEXITSTATUS(r->status));
    else if (WIFSIGNALED(r->status))
        put(how, sizeof how, "was killed by signal %d", WTERMSIG(r->status));
    else
        put(how, sizeof how, "ended with wait status %#x", (unsigned)r->status);

    switch (r->how) {
    case READY: put(out, outlen, "redis-server (pid %ld) %s after %lld ms up", (long)r->pid, how, r->up_ms); break;
    case TIMEOUT:
        if (r->waited_ms == NG_REDIS_EMBED_LOAD_MS)
            put(out, outlen, "redis-server (pid %ld) was still loading its AOF after %d s", (long)r->pid,
                r->waited_ms / 1000);
        else
            put(out, outlen, "redis-server (pid %ld) did not answer PING within %d s", (long)r->pid,
                r->waited_ms / 1000);
        break;
    default: put(out, outlen, "redis-server (pid %ld) %s before answering PING", (long)r->pid, how); break;
    }
    /* A healthy server killed from outside has nothing to say. */
    if (r->how == READY && killed9)
        return;
    log_tail(e->log, r->log_at, tail, sizeof tail);
    if (tail[0] != '\0') {
        size_t used = strlen(out);

        put(out + used, outlen - used, "; %s: %s", e->log, tail);
    }
}

/* Reaps r->pid; call with the mutex held so that clearing e->pid and reaping are one step. */
static void
reap(ng_redis_embed *e, struct run *r)
{
    pid_t got;
    int status = 0;

    do
        got = waitpid(r->pid, &status, 0);
    while (got < 0 && errno == EINTR);
    r->reaped = got == r->pid;
    r->status = status;
    e->pid = 0;
}

static void *
supervise(void *arg)
{
    ng_redis_embed *e = arg;
    unsigned delay = NG_REDIS_EMBED_BACKOFF_MIN_MS;
    struct timespec until;

    pthread_mutex_lock(&e->mu);
    for (;;) {
        struct run r;

        memset(&r, 0, sizeof r);
        r.up_ms = -1;
        rotate_log(e->log);
        r.log_at = log_size(e->log);
        r.spawn_err = spawn(e, &r.pid);
        e->pid = r.pid;
        pthread_mutex_unlock(&e->mu);

        if (r.pid > 0) {
            r.how = wait_ready(e, &r);
            if (r.how == READY) {
                pthread_mutex_lock(&e->mu);
                e->state = NG_REDIS_EMBED_RUNNING;
                clock_gettime(CLOCK_MONOTONIC, &e->up_since);
                if (e->first == 0)
                    e->first = 1;
                pthread_cond_broadcast(&e->cv);
                pthread_mutex_unlock(&e->mu);
            } else if (r.how == TIMEOUT) {
                /* Still unreaped, so the pid is ours; it never served, nothing to flush. */
                kill(r.pid, SIGKILL);
            }
            /* STOPPING: ng_redis_embed_stop has signalled it. */
            wait_exit(r.pid);
        }

        pthread_mutex_lock(&e->mu);
        if (r.pid > 0) {
            if (r.how == READY)
                r.up_ms = ms_since(&e->up_since);
            reap(e, &r);
        }
        if (e->stopping)
            break;
        describe(e, &r, e->last_error, sizeof e->last_error);
        if (e->first == 0) {
            e->first = -1;
            e->first_err = r.pid == 0 ? NG_ERR_IO : NG_ERR_UNAVAILABLE;
            break;
        }
        if (r.up_ms >= NG_REDIS_EMBED_STABLE_MS) {
            e->failures = 0;
            delay = NG_REDIS_EMBED_BACKOFF_MIN_MS;
        }
        e->failures++;
        e->next_delay_ms = delay;
        e->state =
            e->failures >= NG_REDIS_EMBED_CRASH_LOOP_FAILURES ? NG_REDIS_EMBED_CRASH_LOOP : NG_REDIS_EMBED_STARTING;
        pthread_cond_broadcast(&e->cv);
        deadline_in(&until, (long)delay);
        while (!e->stopping && pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT)
            ;
        if (e->stopping)
            break;
        delay = delay * 2 > NG_REDIS_EMBED_BACKOFF_MAX_MS ? NG_REDIS_EMBED_BACKOFF_MAX_MS : delay * 2;
        e->restarts++;
    }
    e->pid = 0;
    e->state = NG_REDIS_EMBED_STOPPED;
    e->thread_done = 1;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
    return NULL;
}

/* After the last server is reaped, while the lock is still held: nothing else can be using these. */
static void
release(ng_redis_embed *e)
{
    (void)unlink(e->sock);
    (void)unlink(e->pidfile);
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    e->lock_fd = -1;
    /* Last: while "lock" is held, the owner lock must be too (see take_lock). */
    if (e->owner_fd >= 0)
        close(e->owner_fd);
    e->owner_fd = -1;
}

static void
destroy(ng_redis_embed *e)
{
    if (e->lock_fd >= 0)
        close(e->lock_fd);
    if (e->owner_fd >= 0)
        close(e->owner_fd);
    pthread_cond_destroy(&e->cv);
    pthread_mutex_destroy(&e->mu);
    free(e);
}

static ng_err
init_sync(ng_redis_embed *e)
{
    pthread_condattr_t ca;
    int rc;

    if (pthread_condattr_init(&ca) != 0)
        return NG_ERR_NOMEM;
    /* Backoff and timeouts must not jump with the wall clock. */
    rc = pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    if (rc == 0)
        rc = pthread_cond_init(&e->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc != 0)
        return NG_ERR_NOMEM;
    if (pthread_mutex_init(&e->mu, NULL) != 0) {
        pthread_cond_destroy(&e->cv);
        return NG_ERR_NOMEM;
    }
    return NG_OK;
}

ng_err
ng_redis_embed_start(ng_redis_embed **out, const char *data_dir, ng_redis_embed_fsync fsync, char *err, size_t errlen)
{
    ng_redis_embed *e;
    sigset_t all, old;
    ng_err rc;

    *out = NULL;
    if (errlen > 0)
        err[0] = '\0';
    if (data_dir[0] == '\0' || (unsigned)fsync > NG_REDIS_EMBED_FSYNC_NO)
        return fail(err, errlen, NG_ERR_INVALID_ARG, "embedded redis: empty data_dir or bad appendfsync");
    e = calloc(1, sizeof *e);
    if (e == NULL)
        return fail(err, errlen, NG_ERR_NOMEM, "embedded redis: out of memory");
    if (init_sync(e) != NG_OK) {
        free(e);
        return fail(err, errlen, NG_ERR_NOMEM, "embedded redis: cannot create a mutex");
    }
    e->lock_fd = -1;
    e->owner_fd = -1;
    e->fsync = fsync;
    e->state = NG_REDIS_EMBED_STARTING;

    if (find_exe(e->exe, sizeof e->exe) != NG_OK) {
        destroy(e);
        return fail(err, errlen, NG_ERR_NOT_FOUND,
                    "redis-server not found in PATH: install the Debian package redis-server "
                    "(apt-get install redis-server), or set redis.url to a Redis of your own");
    }
    rc = prepare_dir(e, data_dir, err, errlen);
    if (rc == NG_OK)
        rc = take_lock(e, err, errlen);
    /* Only now, under the lock, is a socket file known to be left over from a dead server. */
    if (rc == NG_OK && unlink(e->sock) != 0 && errno != ENOENT)
        rc = fail(err, errlen, NG_ERR_IO, "%s: cannot remove the stale socket: %s", e->sock, strerror(errno));
    if (rc != NG_OK) {
        destroy(e);
        return rc;
    }

    /* Signals are the gateway's main thread's business; a blocked SIGPIPE also keeps a dying server's EPIPE an error.
     */
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    rc = pthread_create(&e->thread, NULL, supervise, e) == 0 ? NG_OK : NG_ERR_NOMEM;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != NG_OK) {
        release(e);
        destroy(e);
        return fail(err, errlen, rc, "embedded redis: cannot start the supervisor thread");
    }

    pthread_mutex_lock(&e->mu);
    while (e->first == 0)
        pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);
    if (e->first < 0) {
        pthread_join(e->thread, NULL);
        rc = fail(err, errlen, e->first_err, "%s", e->last_error);
        release(e);
        destroy(e);
        return rc;
    }
    *out = e;
    return NG_OK;
}

const char *
ng_redis_embed_url(const ng_redis_embed *e)
{
    return e->url;
}

pid_t
ng_redis_embed_pid(ng_redis_embed *e)
{
    pid_t pid;

    pthread_mutex_lock(&e->mu);
    pid = e->pid;
    pthread_mutex_unlock(&e->mu);
    return pid;
}

unsigned
ng_redis_embed_restarts(ng_redis_embed *e)
{
    unsigned n;

    pthread_mutex_lock(&e->mu);
    n = e->restarts;
    pthread_mutex_unlock(&e->mu);
    return n;
}

void
ng_redis_embed_get_status(ng_redis_embed *e, ng_redis_embed_status *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&e->mu);
    out->state = e->state;
    out->pid = e->pid;
    out->restarts = e->restarts;
    out->failures = e->failures;
    out->next_delay_ms = e->next_delay_ms;
    out->orphan_stopped = e->orphan_stopped;
    memcpy(out->last_error, e->last_error, sizeof out->last_error);
    if (e->state == NG_REDIS_EMBED_RUNNING && ms_since(&e->up_since) >= NG_REDIS_EMBED_STABLE_MS)
        out->failures = 0;
    pthread_mutex_unlock(&e->mu);
}

void
ng_redis_embed_stop(ng_redis_embed *e)
{
    struct timespec until;

    if (e == NULL)
        return;
    pthread_mutex_lock(&e->mu);
    if (e->stop_state != 0) {
        while (e->stop_state != 2)
            pthread_cond_wait(&e->cv, &e->mu);
        pthread_mutex_unlock(&e->mu);
        return;
    }
    e->stop_state = 1;
    e->stopping = 1;
    if (e->pid > 0) {
        kill(e->pid, SIGTERM);
        /* A stopped process acts on SIGTERM only once continued. */
        kill(e->pid, SIGCONT);
    }
    pthread_cond_broadcast(&e->cv);
    deadline_in(&until, NG_REDIS_EMBED_STOP_MS);
    while (!e->thread_done && pthread_cond_timedwait(&e->cv, &e->mu, &until) != ETIMEDOUT)
        ;
    if (!e->thread_done && e->pid > 0)
        kill(e->pid, SIGKILL);
    while (!e->thread_done)
        pthread_cond_wait(&e->cv, &e->mu);
    pthread_mutex_unlock(&e->mu);

    pthread_join(e->thread, NULL);
    release(e);

    pthread_mutex_lock(&e->mu);
    e->stop_state = 2;
    pthread_cond_broadcast(&e->cv);
    pthread_mutex_unlock(&e->mu);
}

void
ng_redis_embed_free(ng_redis_embed *e)
{
    if (e == NULL)
        return;
    ng_redis_embed_stop(e);
    destroy(e);
}

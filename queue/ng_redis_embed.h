/*
 * ng_redis_embed.h: the embedded default Redis. With no redis.url
 * configured, the gateway runs a private redis-server and supervises it.
 *
 * The server lives in <data_dir>/redis (mode 0700): its unix socket
 * redis.sock (perm 700, and `--port 0`, so no TCP at all), its AOF
 * (appendonlydir/, `appendonly yes`, `save ""`), redis.log and redis.pid.
 * It is found in PATH once, at start, and run with a fixed environment,
 * default signal dispositions, an empty signal mask, its own process group
 * and no inherited descriptors but stdio and the lock.
 *
 * One data directory, one server: <data_dir>/redis/lock carries an
 * open-file-description lock (fcntl F_OFD_SETLK) from start to stop. The
 * server inherits that descriptor, so a redis-server orphaned by a gateway
 * killed with SIGKILL still holds the lock, and no second server ever runs
 * over the same AOF. The next start stops such an orphan (SIGTERM, so it
 * writes its AOF; SIGKILL after NG_REDIS_EMBED_STOP_MS) and goes on, so a
 * crashed gateway restarts by itself. An orphan is told apart from a live
 * gateway's server by a second lock, <data_dir>/redis/owner, which the
 * gateway holds and its server does not inherit: "lock" held with "owner"
 * free means the owner died. Even then only the redis-server of redis.pid
 * that holds this directory's lock file as its descriptor 3 (per /proc) is
 * stopped; anything else is refused (NG_ERR_EXISTS).
 *
 * Supervision: a thread waits on the server's pid (waitid on that pid only,
 * no SIGCHLD handler, so other children of the process are left alone) and
 * restarts it after it dies, after a backoff of 100 ms doubling to 5 s per
 * death in a row; a server that stayed up NG_REDIS_EMBED_STABLE_MS starts
 * the count afresh. The thread never gives up and never spins: a crash loop
 * shows in ng_redis_embed_get_status. The process must not set SIGCHLD to
 * SIG_IGN nor reap with waitpid(-1) elsewhere: either steals the status.
 *
 * Deployment note: under systemd, KillMode=mixed lets the gateway drain
 * while its server still runs (control-group would SIGTERM both at once).
 *
 * THREAD SAFETY: the calls on one handle may come from any threads;
 * ng_redis_embed_free must be the last of them.
 */
#ifndef NG_REDIS_EMBED_H
#define NG_REDIS_EMBED_H

#include <stddef.h>
#include <sys/types.h>

#include "ng_error.h"

typedef struct ng_redis_embed ng_redis_embed;

/* The order of ng_config_appendfsync (redis.appendfsync), so one casts to the other. */
typedef enum ng_redis_embed_fsync {
    NG_REDIS_EMBED_FSYNC_EVERYSEC = 0,
    NG_REDIS_EMBED_FSYNC_ALWAYS = 1,
    NG_REDIS_EMBED_FSYNC_NO = 2,
} ng_redis_embed_fsync;

enum {
    NG_REDIS_EMBED_START_MS = 10000,     /* for a new server to answer at all */
    NG_REDIS_EMBED_LOAD_MS = 300000,     /* for one that answers LOADING to finish reading its AOF */
    NG_REDIS_EMBED_STOP_MS = 5000,       /* from SIGTERM to SIGKILL */
    NG_REDIS_EMBED_BACKOFF_MIN_MS = 100, /* before the first restart */
    NG_REDIS_EMBED_BACKOFF_MAX_MS = 5000,
    NG_REDIS_EMBED_STABLE_MS = 10000,       /* up this long: its death restarts the backoff */
    NG_REDIS_EMBED_CRASH_LOOP_FAILURES = 3, /* failures in a row that make a crash loop */
    NG_REDIS_EMBED_ERROR_BYTES = 512,
};

typedef enum ng_redis_embed_state {
    NG_REDIS_EMBED_RUNNING = 0,    /* the server answered PING and has not died since */
    NG_REDIS_EMBED_STARTING = 1,   /* a replacement is waited for (backoff) or starting */
    NG_REDIS_EMBED_CRASH_LOOP = 2, /* as STARTING, after CRASH_LOOP_FAILURES failures in a row */
    NG_REDIS_EMBED_STOPPED = 3,    /* ng_redis_embed_stop was called */
} ng_redis_embed_state;

typedef struct ng_redis_embed_status {
    ng_redis_embed_state state;
    pid_t pid;              /* of the current server, 0 when none runs */
    unsigned restarts;      /* servers started after the first */
    unsigned failures;      /* deaths and failed starts in a row (0 once a server is up for STABLE_MS) */
    unsigned next_delay_ms; /* the backoff before the next start */
    pid_t orphan_stopped;   /* a server left by a killed gateway that the start stopped, 0 if none */
    char last_error[NG_REDIS_EMBED_ERROR_BYTES]; /* why the last server died or did not start; "" if none did */
} ng_redis_embed_status;

/*
 * Creates data_dir (0700) if needed and <data_dir>/redis, takes the lock,
 * removes a stale socket, starts redis-server and returns once it answers
 * PING. *out is NULL on failure, and err (if errlen > 0) then holds one
 * line saying what failed, with the last lines of redis.log when the
 * server ran. Returns
 *   NG_ERR_NOT_FOUND   redis-server is not in PATH (the message names the
 *                      Debian package redis-server)
 *   NG_ERR_EXISTS      "another noisegate owns this data directory's Redis"
 *                      (or a redis-server that could not be stopped: the
 *                      message gives that server's pid from redis.pid)
 *   NG_ERR_UNAVAILABLE the server exited or did not answer in time
 *   NG_ERR_TOO_LARGE   the socket path would exceed a unix socket's 107 bytes
 *   NG_ERR_IO          a directory, the lock or the spawn failed
 *   NG_ERR_INVALID_ARG, NG_ERR_NOMEM
 * Blocks up to NG_REDIS_EMBED_START_MS (NG_REDIS_EMBED_LOAD_MS while a large
 * AOF loads).
 */
NG_MUST_CHECK ng_err ng_redis_embed_start(ng_redis_embed **out, const char *data_dir, ng_redis_embed_fsync fsync,
                                          char *err, size_t errlen) NG_NONNULL(1, 2);

/* "unix:<data_dir>/redis/redis.sock" with data_dir made absolute, for ng_redis_connect. Valid until free. */
const char *ng_redis_embed_url(const ng_redis_embed *e) NG_NONNULL(1);

/* The current server's pid, 0 while none runs (between a death and its replacement, after stop). */
pid_t ng_redis_embed_pid(ng_redis_embed *e) NG_NONNULL(1);

/* Servers started after the first. */
unsigned ng_redis_embed_restarts(ng_redis_embed *e) NG_NONNULL(1);

void ng_redis_embed_get_status(ng_redis_embed *e, ng_redis_embed_status *out) NG_NONNULL(1, 2);

/*
 * Stops supervising, sends the server SIGTERM (a clean shutdown flushes
 * the AOF) and SIGKILL after NG_REDIS_EMBED_STOP_MS, waits for it, removes
 * the socket and releases the lock. Idempotent; NULL is a no-op. The
 * handle stays readable (pid 0, state STOPPED) until ng_redis_embed_free.
 */
void ng_redis_embed_stop(ng_redis_embed *e);

/* Stops if needed and frees; NULL is a no-op. */
void ng_redis_embed_free(ng_redis_embed *e);

#endif

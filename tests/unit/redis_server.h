/*
 * A private redis-server for a test: started from PATH on a unix socket in
 * a temporary directory (no TCP port at all), stopped by its PID. The
 * caller chooses persistence through extra arguments.
 */
#ifndef TEST_REDIS_SERVER_H
#define TEST_REDIS_SERVER_H

#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

extern char **environ;

struct redis_server {
    pid_t pid;
    char dir[256];
    char sock[320];
    char url[340];
};

/*
 * Starts the server in r->dir, which exists; 0 once it answers PING on its
 * socket, -1 otherwise (and it is stopped). Used again after a stop to
 * restart on the same data.
 */
static inline int
redis_server_spawn(struct redis_server *r, const char *const *extra)
{
    char *argv[40];
    char log[320];
    int i, n = 0, tries;

    snprintf(r->sock, sizeof r->sock, "%s/redis.sock", r->dir);
    snprintf(r->url, sizeof r->url, "unix:%s", r->sock);
    snprintf(log, sizeof log, "%s/redis.log", r->dir);
    argv[n++] = (char *)"redis-server";
    argv[n++] = (char *)"--port";
    argv[n++] = (char *)"0";
    argv[n++] = (char *)"--unixsocket";
    argv[n++] = r->sock;
    argv[n++] = (char *)"--unixsocketperm";
    argv[n++] = (char *)"700";
    argv[n++] = (char *)"--dir";
    argv[n++] = r->dir;
    argv[n++] = (char *)"--logfile";
    argv[n++] = log;
    argv[n++] = (char *)"--save";
    argv[n++] = (char *)"";
    for (i = 0; extra != NULL && extra[i] != NULL && n < 38; i++)
        argv[n++] = (char *)extra[i];
    argv[n] = NULL;
    if (posix_spawnp(&r->pid, "redis-server", NULL, NULL, argv, environ) != 0) {
        fprintf(stderr, "redis-server not found in PATH (Debian package redis-server)\n");
        return -1;
    }
    for (tries = 0; tries < 400; tries++) {
        struct timespec ts = {0, 25 * 1000000L};
        redisContext *c = redisConnectUnix(r->sock);

        if (c != NULL && !c->err) {
            redisReply *pong = redisCommand(c, "PING");
            int ok = pong != NULL && pong->type == REDIS_REPLY_STATUS;

            freeReplyObject(pong);
            redisFree(c);
            if (ok)
                return 0;
        } else if (c != NULL) {
            redisFree(c);
        }
        if (waitpid(r->pid, NULL, WNOHANG) == r->pid) {
            r->pid = 0;
            return -1;
        }
        nanosleep(&ts, NULL);
    }
    kill(r->pid, SIGKILL);
    waitpid(r->pid, NULL, 0);
    r->pid = 0;
    return -1;
}

/* A new temporary directory and a server in it; 0 once it answers. */
static inline int
redis_server_start(struct redis_server *r, const char *const *extra)
{
    snprintf(r->dir, sizeof r->dir, "%s/ngredis-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(r->dir) == NULL)
        return -1;
    return redis_server_spawn(r, extra);
}

/* Kills the server with sig (SIGKILL: a crash) and waits for it; the directory stays. */
static inline void
redis_server_kill(struct redis_server *r, int sig)
{
    if (r->pid > 0) {
        kill(r->pid, sig);
        kill(r->pid, SIGCONT);
        waitpid(r->pid, NULL, 0);
        r->pid = 0;
    }
}

/* Stops the server by its PID and removes its directory. */
static inline void
redis_server_stop(struct redis_server *r)
{
    char cmd[300];

    if (r->pid > 0) {
        int i;

        /* SIGCONT: a test may have left it stopped, and a stopped process ignores SIGTERM. */
        kill(r->pid, SIGTERM);
        kill(r->pid, SIGCONT);
        for (i = 0; i < 200 && waitpid(r->pid, NULL, WNOHANG) == 0; i++) {
            struct timespec ts = {0, 25 * 1000000L};
            nanosleep(&ts, NULL);
        }
        if (i == 200) {
            kill(r->pid, SIGKILL);
            waitpid(r->pid, NULL, 0);
        }
        r->pid = 0;
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", r->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", r->dir);
}

#endif

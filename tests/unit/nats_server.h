/*
 * A private nats-server for a test: JetStream on, listening on 127.0.0.1 at
 * a free port, its store and log in a temporary directory, one process in
 * the foreground stopped by its PID and killed by the kernel if the test
 * dies. It can be halted and started again on the same port and store, to
 * test an outage and what survives it.
 */
#ifndef TEST_NATS_SERVER_H
#define TEST_NATS_SERVER_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

struct nats_server {
    pid_t pid;
    int port;
    char dir[256];
    char store[300]; /* dir/store: JetStream's files, kept across a restart */
    char log[300];   /* dir/nats.log */
    char url[64];    /* "nats://127.0.0.1:PORT" */
};

/*
 * 1 if the server at port greets with an INFO line that has JetStream on.
 * A bare connect is not enough: the port may be someone else's, and a
 * server without JetStream would fail every test for another reason.
 */
static inline int
nats_server_ready(int port)
{
    struct sockaddr_in a;
    struct pollfd p;
    char info[2048];
    size_t got = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok = 0;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) == 0) {
        p.fd = fd;
        p.events = POLLIN;
        while (got < sizeof info - 1 && memchr(info, '\n', got) == NULL && poll(&p, 1, 1000) == 1) {
            ssize_t r = read(fd, info + got, sizeof info - 1 - got);

            if (r <= 0)
                break;
            got += (size_t)r;
        }
        info[got] = '\0';
        ok = strncmp(info, "INFO ", 5) == 0 && strstr(info, "\"jetstream\":true") != NULL;
    }
    close(fd);
    return ok;
}

/* Starts nats-server on s->port and s->store; 0 once it is ready, -1 otherwise (and it is stopped). */
static inline int
nats_server_run(struct nats_server *s)
{
    char port[16];
    char *argv[] = {(char *)"nats-server", (char *)"-a", (char *)"127.0.0.1", (char *)"-p", port, (char *)"-js",
                    (char *)"-sd",         s->store,     (char *)"-l",        s->log,       NULL};
    pid_t parent = getpid();
    int tries, status;

    snprintf(port, sizeof port, "%d", s->port);
    s->pid = fork();
    if (s->pid < 0) {
        s->pid = 0;
        return -1;
    }
    if (s->pid == 0) {
        /* Killed with the test, even one a sanitizer aborts: no server is left behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        execvp("nats-server", argv);
        /* Debian puts it in sbin, which a user's PATH may lack. */
        execv("/usr/sbin/nats-server", argv);
        _exit(127);
    }
    for (tries = 0; tries < 400; tries++) {
        /* Ours exited (the port was taken, or no binary) before whoever answers there counts. */
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                fprintf(stderr, "nats-server not found (Debian package nats-server)\n");
            s->pid = 0;
            return -1;
        }
        if (nats_server_ready(s->port))
            return 0;
        loopback_nap(25);
    }
    kill(s->pid, SIGKILL);
    waitpid(s->pid, NULL, 0);
    s->pid = 0;
    return -1;
}

/* Stops the server by its PID (SIGTERM, then SIGKILL after 5 s), keeping its directory. */
static inline void
nats_server_halt(struct nats_server *s)
{
    int i;

    if (s->pid <= 0)
        return;
    /* SIGCONT: a test may have left it stopped, and a stopped process does not act on SIGTERM. */
    kill(s->pid, SIGTERM);
    kill(s->pid, SIGCONT);
    for (i = 0; i < 200 && waitpid(s->pid, NULL, WNOHANG) == 0; i++)
        loopback_nap(25);
    if (i == 200) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, NULL, 0);
    }
    s->pid = 0;
}

/* Starts it again on the same port and store: what JetStream stored is back. */
static inline int
nats_server_restart(struct nats_server *s)
{
    nats_server_halt(s);
    return nats_server_run(s);
}

/* A fresh directory and a free port; 0 once the server is ready, -1 otherwise. */
static inline int
nats_server_start(struct nats_server *s)
{
    int attempt;

    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "%s/ngnats-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(s->dir) == NULL)
        return -1;
    snprintf(s->store, sizeof s->store, "%s/store", s->dir);
    snprintf(s->log, sizeof s->log, "%s/nats.log", s->dir);
    /* Another process may take the port between our probe and the server's bind: try a few. */
    for (attempt = 0; attempt < 5; attempt++) {
        s->port = loopback_free_port();
        if (s->port <= 0)
            return -1;
        snprintf(s->url, sizeof s->url, "nats://127.0.0.1:%d", s->port);
        if (nats_server_run(s) == 0)
            return 0;
    }
    return -1;
}

/* Stops it and removes its directory. */
static inline void
nats_server_stop(struct nats_server *s)
{
    char cmd[300];

    nats_server_halt(s);
    if (s->dir[0] == '\0')
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", s->dir);
}

#endif

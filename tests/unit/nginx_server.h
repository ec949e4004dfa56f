/*
 * A private nginx for a test: WebDAV (dav and dav-ext modules) on 127.0.0.1
 * at a free port, everything (config, root, logs, temp files, pid) in a
 * temporary directory, one process in the foreground (no daemon, no
 * master) stopped by its PID, and killed by the kernel if the test dies. It can be halted and started again on the
 * same directory and port, to test what survives a restart.
 *
 * The access log has one line per request: "METHOD URI STATUS CONNECTION",
 * so a test can count requests and tell whether a connection was reused.
 */
#ifndef TEST_NGINX_SERVER_H
#define TEST_NGINX_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "loopback.h"

struct nginx_server {
    pid_t pid;
    int port;
    char dir[256];
    char root[300];   /* the document root: dir/root */
    char conf[300];   /* dir/nginx.conf */
    char access[300]; /* dir/access.log */
    char url[64];     /* "http://127.0.0.1:PORT" */
};

static inline int
nginx_server_answers(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;

    if (fd < 0)
        return 0;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = htons((unsigned short)port);
    ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

static inline const char *
nginx_server_dav_ext(void)
{
    static const char *const where[] = {"/usr/lib/nginx/modules/ngx_http_dav_ext_module.so",
                                        "/usr/share/nginx/modules/ngx_http_dav_ext_module.so"};
    size_t i;

    for (i = 0; i < sizeof where / sizeof where[0]; i++)
        if (access(where[i], R_OK) == 0)
            return where[i];
    return NULL;
}

/* Writes the config for n->port; extra goes into the server block. */
static inline int
nginx_server_write_conf(struct nginx_server *n, const char *extra)
{
    const char *module = nginx_server_dav_ext();
    FILE *f;

    if (module == NULL) {
        fprintf(stderr, "ngx_http_dav_ext_module.so not found (Debian package libnginx-mod-http-dav-ext)\n");
        return -1;
    }
    f = fopen(n->conf, "w");
    if (f == NULL)
        return -1;
    fprintf(f,
            "load_module %s;\n"
            "daemon off;\n"
            "master_process off;\n"
            "pid %s/nginx.pid;\n"
            "error_log %s/error.log info;\n"
            "events { worker_connections 256; }\n"
            "http {\n"
            "  log_format ng '$request_method $uri $status $connection';\n"
            "  access_log %s ng;\n"
            "  client_body_temp_path %s/tmp/body;\n"
            "  proxy_temp_path %s/tmp/proxy;\n"
            "  fastcgi_temp_path %s/tmp/fastcgi;\n"
            "  uwsgi_temp_path %s/tmp/uwsgi;\n"
            "  scgi_temp_path %s/tmp/scgi;\n"
            "  client_max_body_size 128m;\n"
            "  keepalive_requests 100000;\n"
            "  server {\n"
            "    listen 127.0.0.1:%d;\n"
            "    root %s;\n"
            "    location / {\n"
            "      dav_methods PUT DELETE MKCOL;\n"
            "      dav_ext_methods PROPFIND OPTIONS;\n"
            "      create_full_put_path on;\n"
            "    }\n"
            "%s\n"
            "  }\n"
            "}\n",
            module, n->dir, n->dir, n->access, n->dir, n->dir, n->dir, n->dir, n->dir, n->port, n->root,
            extra != NULL ? extra : "");
    return fclose(f) == 0 ? 0 : -1;
}

/* Starts nginx on the config already written; 0 once it accepts connections. */
static inline int
nginx_server_run(struct nginx_server *n)
{
    char errlog[300], prefix[300];
    char *argv[] = {(char *)"nginx", (char *)"-e", errlog, (char *)"-p", prefix, (char *)"-c", n->conf, NULL};

    pid_t parent = getpid();
    int tries, status;

    snprintf(errlog, sizeof errlog, "%s/error.log", n->dir);
    snprintf(prefix, sizeof prefix, "%s/", n->dir);
    n->pid = fork();
    if (n->pid < 0) {
        n->pid = 0;
        return -1;
    }
    if (n->pid == 0) {
        /* Killed with the test, even one a sanitizer aborts: no nginx is left behind. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(126);
        execvp("nginx", argv);
        execv("/usr/sbin/nginx", argv);
        _exit(127);
    }
    for (tries = 0; tries < 400; tries++) {
        if (nginx_server_answers(n->port))
            return 0;
        if (waitpid(n->pid, &status, WNOHANG) == n->pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == 127)
                fprintf(stderr, "nginx not found (Debian package nginx)\n");
            n->pid = 0;
            return -1;
        }
        loopback_nap(25);
    }
    kill(n->pid, SIGKILL);
    waitpid(n->pid, NULL, 0);
    n->pid = 0;
    return -1;
}

/* Stops nginx by its PID (graceful, then forced), keeping its directory. */
static inline void
nginx_server_halt(struct nginx_server *n)
{
    int i;

    if (n->pid <= 0)
        return;
    /* SIGCONT: a test may have left it stopped, and a stopped process does not act on SIGQUIT. */
    kill(n->pid, SIGQUIT);
    kill(n->pid, SIGCONT);
    for (i = 0; i < 200 && waitpid(n->pid, NULL, WNOHANG) == 0; i++)
        loopback_nap(25);
    if (i == 200) {
        kill(n->pid, SIGKILL);
        waitpid(n->pid, NULL, 0);
    }
    n->pid = 0;
}

/* Starts it again on the same directory, port and config. */
static inline int
nginx_server_restart(struct nginx_server *n)
{
    nginx_server_halt(n);
    return nginx_server_run(n);
}

/*
 * A fresh directory and a free port; extra is added to the server block
 * (more locations). 0 when nginx accepts connections, -1 otherwise.
 */
static inline int
nginx_server_start(struct nginx_server *n, const char *extra)
{
    char path[400];
    int attempt;

    memset(n, 0, sizeof *n);
    snprintf(n->dir, sizeof n->dir, "%s/ngnginx-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(n->dir) == NULL)
        return -1;
    snprintf(n->root, sizeof n->root, "%s/root", n->dir);
    snprintf(n->conf, sizeof n->conf, "%s/nginx.conf", n->dir);
    snprintf(n->access, sizeof n->access, "%s/access.log", n->dir);
    snprintf(path, sizeof path, "%s/tmp", n->dir);
    if (mkdir(n->root, 0700) != 0 || mkdir(path, 0700) != 0)
        return -1;
    /* Another process may take the port between our probe and nginx's bind: try a few. */
    for (attempt = 0; attempt < 5; attempt++) {
        n->port = loopback_free_port();
        if (n->port <= 0)
            return -1;
        snprintf(n->url, sizeof n->url, "http://127.0.0.1:%d", n->port);
        if (nginx_server_write_conf(n, extra) != 0)
            return -1;
        if (nginx_server_run(n) == 0)
            return 0;
    }
    return -1;
}

/* Stops it and removes its directory. */
static inline void
nginx_server_stop(struct nginx_server *n)
{
    char cmd[300];

    nginx_server_halt(n);
    if (n->dir[0] == '\0')
        return;
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", n->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", n->dir);
}

/* How many access log lines contain needle. */
static inline int
nginx_server_count(const struct nginx_server *n, const char *needle)
{
    char line[1024];
    FILE *f = fopen(n->access, "r");
    int count = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, needle) != NULL)
            count++;
    fclose(f);
    return count;
}

#endif

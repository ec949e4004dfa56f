/*
 * noisegate serve --config FILE: the gateway. SIGTERM or SIGINT drains it:
 * the listeners stop accepting, requests in flight finish (up to
 * listen.timeout_s), then the store and the embedded Redis are closed and
 * the process exits 0.
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "ng_cli.h"
#include "ng_cli_vault.h"
#include "ng_deliverer.h"
#include "ng_gateway.h"
#include "ng_log.h"
#include "ng_nats.h"
#include "ng_poller.h"
#include "ng_trimmer.h"
#include "ng_server.h"

static void
drain(ng_server *s, unsigned timeout_s)
{
    struct timespec tick = {0, 50 * 1000000L};
    unsigned waited_ms = 0;

    while (s != NULL && ng_server_requests(s) > 0 && waited_ms < timeout_s * 1000u) {
        nanosleep(&tick, NULL);
        waited_ms += 50;
    }
}

int
ng_cli_serve(int argc, char **argv)
{
    const char *config, *pos[1];
    ng_server *pub = NULL, *admin = NULL;
    ng_gateway *g = NULL;
    ng_poller *poller = NULL;
    ng_trimmer *trimmer = NULL;
    ng_deliverer *deliverer = NULL;
    ng_server_opts o;
    ng_log *log = NULL;
    ng_vault *v;
    sigset_t stop;
    char err[512], port[16];
    int npos, sig = 0, rc;
    ng_cli_ctx c;

    rc = ng_cli_parse("serve", argc, argv, NULL, &config, pos, 0, &npos);
    if (rc != 0)
        return rc;
    /* Blocked before any thread starts, so that only sigwait below ever sees them. */
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);

    rc = ng_cli_ctx_open(&c, "serve", config, 1);
    if (rc == 0)
        rc = ng_cli_ctx_vault(&c, &v); /* the master key opens the vault before anything listens */
    if (rc != 0) {
        ng_cli_ctx_close(&c);
        return rc;
    }
    ng_vault_close(v);
    if (ng_log_new(&log, 2, (ng_log_level)c.cfg.log.level, c.cfg.log.format == NG_CONFIG_LOG_JSON) != NG_OK) {
        ng_cli_ctx_close(&c);
        return ng_cli_fail(NG_EXIT_FAILED, "serve", "cannot set up logging");
    }
    if (ng_gateway_new(&g, &c.cfg, log, c.store, &c.secret, err, sizeof err) != NG_OK) {
        rc = ng_cli_fail(NG_EXIT_FAILED, "serve", "%s", err);
        goto out;
    }
    /* Before the listeners, so that the first message accepted can wake it. */
    if (ng_deliverer_start(&deliverer, g) != NG_OK) {
        rc = ng_cli_fail(NG_EXIT_FAILED, "serve", "cannot start the deliverer");
        goto out;
    }
    ng_gateway_on_inbox(g, ng_deliverer_kick, deliverer);
    memset(&o, 0, sizeof o);
    o.address = c.cfg.listen.address;
    o.port = c.cfg.listen.port;
    o.threads = (unsigned)c.cfg.listen.threads;
    o.max_body = (size_t)c.cfg.listen.max_body;
    o.timeout_s = (unsigned)c.cfg.listen.timeout_s;
    o.handler = ng_gateway_public;
    o.ctx = g;
    o.error_log = ng_gateway_server_log;
    if (ng_server_start(&pub, &o) != NG_OK) {
        rc = ng_cli_fail(NG_EXIT_FAILED, "serve", "cannot listen on %s port %d", o.address, o.port);
        goto out;
    }
    /* The admin listener: a unix socket by default, TCP only if configured. */
    o.handler = ng_gateway_admin;
    /* A pairing offer waits on the backend: the other admin requests must not wait behind it. */
    o.threads = 4;
    if (c.cfg.admin.socket[0] != '\0') {
        o.address = NULL;
        o.unix_path = c.cfg.admin.socket;
    } else {
        o.address = c.cfg.admin.address;
        o.port = c.cfg.admin.port;
    }
    if ((c.cfg.admin.socket[0] != '\0' || c.cfg.admin.port != 0) && ng_server_start(&admin, &o) != NG_OK) {
        rc = ng_cli_fail(NG_EXIT_FAILED, "serve", "cannot listen for the admin API on %s",
                         o.unix_path != NULL ? o.unix_path : o.address);
        goto out;
    }
    if (ng_poller_start(&poller, g) != NG_OK) {
        rc = ng_cli_fail(NG_EXIT_FAILED, "serve", "cannot start the poller");
        goto out;
    }
    if (ng_trimmer_start(&trimmer, g) != NG_OK) {
        rc = ng_cli_fail(NG_EXIT_FAILED, "serve", "cannot start the outbox trimmer");
        goto out;
    }
    snprintf(port, sizeof port, "%d", ng_server_port(pub));
    ng_log_event(log, NG_LOG_INFO, "listening", "address", c.cfg.listen.address, "port", port, "admin",
                 c.cfg.admin.socket[0] != '\0' ? c.cfg.admin.socket : c.cfg.admin.address, NULL);

    while (sigwait(&stop, &sig) != 0)
        ;
    ng_log_event(log, NG_LOG_INFO, "draining", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT", NULL);
    /* Our own pollers first: they keep requests going to this very listener when tenants of one gateway are peers. */
    ng_poller_stop(poller);
    poller = NULL;
    ng_trimmer_stop(trimmer);
    trimmer = NULL;
    ng_server_quiesce(pub);
    ng_server_quiesce(admin);
    drain(pub, (unsigned)c.cfg.listen.timeout_s);
    drain(admin, (unsigned)c.cfg.listen.timeout_s);
    rc = NG_EXIT_OK;
out:
    ng_trimmer_stop(trimmer);
    ng_poller_stop(poller);
    ng_server_stop(admin);
    ng_server_stop(pub);
    ng_deliverer_stop(deliverer); /* after the listeners: nothing can kick it any more */
    ng_nats_library_close();      /* the deliverer's NATS handle is gone: libnats's threads may go too */
    ng_gateway_free(g);
    if (rc == NG_EXIT_OK)
        ng_log_event(log, NG_LOG_INFO, "stopped", NULL);
    ng_log_free(log);
    ng_cli_ctx_close(&c);
    return rc;
}

/*
 * bench_memory.c: what a gateway keeps in memory, and that it leaks none.
 *
 * `make bench-memory` (no argument): resident memory of `noisegate serve`
 * (NG_BIN) and of its embedded redis-server, in four states of one data
 * directory, each read after SETTLE_S seconds of running:
 *
 *   baseline      an empty vault, empty queues
 *   tenants       TENANTS tenants, each with a backend (disabled: see below)
 *                 and one peer, "alice", whose outbox is the stub below
 *   queued        the same plus TENANTS * PER_TENANT messages waiting in
 *                 the tenants' inboxes, added while the gateway runs
 *   restarted     the same data directory, gateway and Redis started afresh
 *                 (Redis reads its AOF back)
 *
 * The tenants are made in this process through the library calls the CLI
 * uses (ng_tenant_create, ng_tenant_backend_add, ng_peer_import), all in
 * one ng_vault_update: one vault open and one save. Each `tenant create`
 * of the CLI or the admin API reads, reseals and fsyncs the whole vault,
 * so creating N tenants one by one costs O(N^2); the time one more CLI
 * `tenant create` takes on the full vault is printed at the end.
 *
 * The queued messages are real parcels: sealed X by alice (a tenant of a
 * second vault, "a", that never runs) to each tenant's key, wrapped as the
 * poller wraps what it fetched (ng_receive_record, peer "alice") and
 * accepted with ng_queue_inbox_accept_many on the gateway's own Redis, as
 * the poller would after fetching them. The tenants' backends are disabled
 * (as a 410 Gone leaves them), so the deliverer leaves the messages where
 * they are: the figures are what waiting messages cost, not retries.
 * Alice's outbox URL points at a stub in this process that answers every
 * poll with an empty listing, so each of the TENANTS pollers runs as it
 * would against a quiet peer.
 *
 * Read for each state: VmRSS and VmHWM (the peak) of both processes from
 * /proc/PID/status, the gateway's thread count, Redis's INFO memory
 * (used_memory) on its unix socket, the vault file and the AOF on disk.
 * In the baseline and restarted states, if gdb is in PATH (and ptrace is
 * allowed), the gateway's glibc malloc_stats (bytes in use against bytes
 * malloc holds) and its RSS after malloc_trim(0): how much of the RSS is
 * live and how much is freed heap that malloc keeps.
 *
 * `make leak-check` (--leaks, NG_BIN an ASan build): two gateways, "a" with
 * tenant alice and "b" with tenant bob, set up with the CLI as
 * tests/cli/test_e2e.c does; this program is alice's backend and bob's
 * (a libmicrohttpd sink). It submits MESSAGES messages to a, signed v1 with
 * alice's backend's whsec_ secret (half one per request, half in batches),
 * and a few requests a refuses; runs tenant list, show, create and delete
 * through the running gateways' admin API (the last two reload b's
 * directory); waits until the sink has answered 2xx for every message (b
 * polls a's outbox, opens, delivers; the sink refuses the first attempt of
 * 2% of them, so retries run too), then sends SIGTERM to both.
 * LeakSanitizer makes a process that leaks exit non-zero (1 under ASan)
 * with the report on its stderr, which goes to the gateway's log and is
 * shown. The CLI commands run under ASan too, and must exit 0 as well.
 *
 * Options: --tenants=N --per-tenant=N --settle=S (memory), --messages=N
 * (leaks). NG_KEEP=1 keeps the temporary directory. Exit status 0 on
 * success, 1 on any failure (for --leaks: a leak, a crash, a lost message).
 */
#include <dirent.h>
#include <limits.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <hiredis/hiredis.h>
#include <microhttpd.h>
#include <sodium.h>

#include "bench_common.h"
#include "ng_cli_vault.h"
#include "ng_parcel.h"
#include "ng_peer.h"
#include "ng_queue.h"
#include "ng_queue_redis.h"
#include "ng_receive.h"
#include "ng_tenant.h"
#include "ng_webhook.h"

enum {
    TENANTS = 10000,
    PER_TENANT = 10,  /* queued messages per tenant: 100,000 in all */
    BODY_BYTES = 256, /* of each queued message's body */
    SETTLE_S = 10,
    MORE_TENANTS = 6, /* created one by one through the admin API, twice */
    MESSAGES = 10000, /* through the two gateways of --leaks */
    BATCH = 100,      /* messages per batch request in --leaks */
    CONC = 8,         /* connections submitting in --leaks */
    REFUSALS = 25,    /* requests of each refused kind in --leaks */
    RESP_MAX = 2048,
    HTTP_TIMEOUT_MS = 60000,
    START_TIMEOUT_MS = 180000, /* an ASan build, or a directory of 10,000 tenants */
    STOP_TIMEOUT_MS = 120000,  /* an ASan build checks for leaks at exit */
    DRAIN_TIMEOUT_MS = 600000, /* for every message of --leaks to reach the sink */
};

static const uint64_t ttl_ms = 86400u * 1000u;

/* ---- gateways ---- */

static struct bench_gw gw_a = {.name = "a"}, gw_b = {.name = "b"};

/* A sample's value in g's /metrics; -1 if absent. */
static double
metric(const struct bench_gw *g, const char *series)
{
    static char text[1 << 20];
    char url[128];
    const char *p;
    size_t n = strlen(series);

    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", g->port);
    if (bench_http_get(url, text, sizeof text) != 200)
        return -1;
    for (p = text; (p = strstr(p, series)) != NULL; p += n)
        if ((p == text || p[-1] == '\n') && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    return -1;
}

static void
describe_status(char *out, size_t cap, int st)
{
    if (st == -1)
        snprintf(out, cap, "did not stop within %d ms of SIGTERM (killed)", STOP_TIMEOUT_MS);
    else if (WIFEXITED(st))
        snprintf(out, cap, "exit status %d", WEXITSTATUS(st));
    else
        snprintf(out, cap, "signal %d", WTERMSIG(st));
}

/* ---- the stub peer and the sink, one libmicrohttpd server ---- */

static struct {
    struct MHD_Daemon *d;
    int port;
    atomic_ulong polls;  /* GET .../v1/outbox/... */
    atomic_ulong others; /* anything else: webhooks */
    /* --leaks: messages m0 .. m<expect-1> (their ce-subject) */
    size_t expect;
    atomic_uchar *tries;    /* attempts seen of each */
    atomic_uchar *done;     /* answered 2xx */
    atomic_ulong delivered; /* distinct messages answered 2xx */
    atomic_ulong dups;      /* 2xx-answered attempts of a message already answered 2xx */
    atomic_ulong refused;   /* first attempts answered 503 or 500 on purpose */
} srv;

/*
 * The first attempt of message k is refused when k % 100 is 1 (503 with
 * Retry-After: 1) or 2 (500, retried on delivery.retry_schedule_s), so the
 * leak check also runs the gateway's retry paths; every other attempt is
 * answered 204.
 */
static int
sink_status(const char *subject, const char **retry_after)
{
    unsigned long k;

    *retry_after = NULL;
    if (subject == NULL || subject[0] != 'm' || (k = strtoul(subject + 1, NULL, 10)) >= srv.expect)
        return 204;
    if (atomic_fetch_add(&srv.tries[k], 1) == 0 && (k % 100 == 1 || k % 100 == 2)) {
        atomic_fetch_add(&srv.refused, 1);
        *retry_after = k % 100 == 1 ? "1" : NULL;
        return k % 100 == 1 ? 503 : 500;
    }
    if (atomic_exchange(&srv.done[k], 1) == 0)
        atomic_fetch_add(&srv.delivered, 1);
    else
        atomic_fetch_add(&srv.dups, 1);
    return 204;
}

static enum MHD_Result
answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
       const char *upload, size_t *upload_size, void **state)
{
    static const char listing[] = "{\"parcels\":[],\"next\":\"\"}";
    const char *retry_after = NULL;
    int status;

    (void)cls, (void)version, (void)upload;
    if (!bench_mhd_body_done(state, upload_size))
        return MHD_YES;
    if (strcmp(method, "GET") == 0 && strstr(url, "/v1/outbox/") != NULL) {
        atomic_fetch_add(&srv.polls, 1);
        return bench_mhd_reply(conn, 200, listing, sizeof listing - 1, NULL);
    }
    atomic_fetch_add(&srv.others, 1);
    /* Without --leaks nothing should be delivered (the backends are disabled): 503 if it is. */
    status = srv.tries != NULL
                 ? sink_status(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "ce-subject"), &retry_after)
                 : 503;
    return bench_mhd_reply(conn, (unsigned)status, NULL, 0, retry_after);
}

static void
srv_start(void)
{
    srv.d = bench_mhd_start(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL, answer, 2, 60, &srv.port);
    if (srv.d == NULL)
        bench_die("cannot start the sink");
}

/* ---- memory ---- */

struct proc_mem {
    long rss_kb, hwm_kb, threads;
};

static struct proc_mem
proc_mem(pid_t pid)
{
    struct proc_mem m = {-1, -1, -1};
    char path[64], line[256];
    FILE *f;

    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    f = fopen(path, "r");
    if (f == NULL)
        return m;
    while (fgets(line, sizeof line, f) != NULL) {
        if (strncmp(line, "VmRSS:", 6) == 0)
            m.rss_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "VmHWM:", 6) == 0)
            m.hwm_kb = strtol(line + 6, NULL, 10);
        else if (strncmp(line, "Threads:", 8) == 0)
            m.threads = strtol(line + 8, NULL, 10);
    }
    fclose(f);
    return m;
}

/* A field of Redis's INFO (section) on g's embedded server; -1 if it cannot be read. */
static long long
redis_info(const struct bench_gw *g, const char *section, const char *field)
{
    char path[PATH_MAX + 32], key[64];
    redisContext *c;
    redisReply *r;
    long long v = -1;
    const char *p;

    snprintf(path, sizeof path, "%s/redis/redis.sock", g->data);
    c = redisConnectUnix(path);
    if (c == NULL || c->err) {
        redisFree(c);
        return -1;
    }
    r = redisCommand(c, "INFO %s", section);
    snprintf(key, sizeof key, "\n%s:", field);
    if (r != NULL && r->type == REDIS_REPLY_STRING && (p = strstr(r->str, key)) != NULL)
        v = strtoll(p + strlen(key), NULL, 10);
    freeReplyObject(r);
    redisFree(c);
    return v;
}

static long long
file_size(const char *path)
{
    struct stat st;

    return stat(path, &st) == 0 ? (long long)st.st_size : -1;
}

/* The bytes of the regular files directly under path. */
static long long
dir_size(const char *path)
{
    char p[PATH_MAX + 512];
    struct dirent *e;
    long long sum = 0, s;
    DIR *d = opendir(path);

    if (d == NULL)
        return -1;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", path, e->d_name);
        if ((s = file_size(p)) > 0)
            sum += s;
    }
    closedir(d);
    return sum;
}

struct row {
    const char *what;
    struct proc_mem gw, redis;
    long long used_memory, keys, vault_bytes, aof_bytes;
    /* glibc malloc_stats of the gateway ("Total (incl. mmap)"), and its RSS after malloc_trim(0); -1 if not probed */
    long long heap_held, heap_in_use;
    long trimmed_rss_kb;
};

static void
measure(struct row *r, const struct bench_gw *g, const char *vault_path)
{
    char aof[PATH_MAX + 32];
    pid_t rp = bench_redis_pid(g);

    if (rp <= 0)
        bench_die("gateway %s has no redis-server", g->name);
    r->gw = proc_mem(g->pid);
    r->redis = proc_mem(rp);
    r->heap_held = r->heap_in_use = -1;
    r->trimmed_rss_kb = -1;
    r->used_memory = redis_info(g, "memory", "used_memory");
    r->keys = redis_info(g, "keyspace", "db0:keys");
    r->vault_bytes = file_size(vault_path);
    snprintf(aof, sizeof aof, "%s/redis/appendonlydir", g->data);
    r->aof_bytes = dir_size(aof);
}

/* Settles for settle_s seconds, then measures. */
static void
settle_measure(struct row *r, const struct bench_gw *g, const char *vault_path, int settle_s)
{
    printf("  running %d s ...\n", settle_s);
    fflush(stdout);
    bench_sleep_ms(settle_s * 1000L);
    if (waitpid(g->pid, NULL, WNOHANG) == g->pid)
        bench_die("gateway %s died; see %s", g->name, g->log);
    measure(r, g, vault_path);
}

/* The path of prog in PATH, into out; 0, or -1 if it is not there. */
static int
which(const char *prog, char *out, size_t cap)
{
    const char *path = getenv("PATH") != NULL ? getenv("PATH") : "/usr/bin:/bin";

    while (*path != '\0') {
        size_t n = strcspn(path, ":");

        snprintf(out, cap, "%.*s/%s", (int)n, path, prog);
        if (n > 0 && access(out, X_OK) == 0)
            return 0;
        path += n + (path[n] == ':');
    }
    return -1;
}

/* The number after "label" in the last "Total (incl. mmap):" block of malloc_stats in text; -1 if none. */
static long long
stats_field(const char *text, const char *label)
{
    const char *p = NULL, *q = text, *f;

    while ((q = strstr(q, "Total (incl. mmap):")) != NULL)
        p = q++;
    if (p == NULL || (f = strstr(p, label)) == NULL || (f = strchr(f, '=')) == NULL)
        return -1;
    return strtoll(f + 1, NULL, 10);
}

/*
 * How much of the gateway's heap is in use: gdb calls malloc_stats() in
 * it (glibc prints to the gateway's stderr, its log), then, with trim,
 * malloc_trim(0), which returns the free pages glibc kept, and the RSS is
 * read again (so a probe with trim changes what is measured after it). The
 * gateway is paused for the second or two gdb takes. Left at -1 without
 * gdb or without ptrace permission.
 */
static void
heap_probe(struct row *r, const struct bench_gw *g, int trim)
{
    char gdb[PATH_MAX], pid[24];
    const char *argv[] = {gdb,
                          "-nx",
                          "-batch",
                          "-p",
                          pid,
                          "-ex",
                          "call (void)malloc_stats()",
                          trim ? "-ex" : NULL,
                          "call (int)malloc_trim(0)",
                          NULL};
    static char text[BENCH_LOG_TAIL + 1];
    uint64_t t0 = bench_now_ms();
    pid_t p;
    int st;

    r->heap_held = r->heap_in_use = -1;
    r->trimmed_rss_kb = -1;
    if (which("gdb", gdb, sizeof gdb) != 0)
        return;
    snprintf(pid, sizeof pid, "%ld", (long)g->pid);
    if ((p = bench_spawn(argv, -1, "/dev/null")) < 0)
        return;
    while (waitpid(p, &st, WNOHANG) == 0) {
        if (bench_now_ms() - t0 > 60000) {
            kill(p, SIGKILL); /* gdb detaches from the gateway as it dies */
            waitpid(p, &st, 0);
            return;
        }
        bench_sleep_ms(50);
    }
    bench_sleep_ms(200);
    if (trim)
        r->trimmed_rss_kb = proc_mem(g->pid).rss_kb;
    bench_read_tail(g->log, text, sizeof text);
    r->heap_held = stats_field(text, "system bytes");
    r->heap_in_use = stats_field(text, "in use bytes");
}

static double
mib(long long kb)
{
    return (double)kb / 1024.0;
}

static void
print_table(const struct row *rows, size_t n)
{
    size_t i;

    printf("\n%-38s %16s %16s %13s %17s %11s %10s\n", "", "gateway RSS", "redis-server", "gateway", "Redis", "vault",
           "AOF");
    printf("%-38s %16s %16s %13s %17s %11s %10s\n", "state", "(peak) MiB", "RSS (peak) MiB", "threads",
           "used_memory MiB", "file MiB", "MiB");
    for (i = 0; i < n; i++) {
        const struct row *r = &rows[i];

        printf("%-38s %7.1f (%6.1f) %7.1f (%6.1f) %13ld %17.1f %11.2f %10.1f\n", r->what, mib(r->gw.rss_kb),
               mib(r->gw.hwm_kb), mib(r->redis.rss_kb), mib(r->redis.hwm_kb), r->gw.threads,
               (double)r->used_memory / 1048576.0, (double)r->vault_bytes / 1048576.0,
               (double)r->aof_bytes / 1048576.0);
    }
}

/* ---- the vaults, in this process ---- */

static int64_t
now_s(void)
{
    return (int64_t)time(NULL);
}

struct alice_ctx {
    const char *outbox;
    char *params;
    ng_keypair kp;
};

/* Alice on vault a: created, her connection parameters (outbox: the stub), her key pair. */
static ng_err
make_alice(ng_vault *v, void *arg)
{
    struct alice_ctx *c = arg;
    ng_tenant_opts o;
    ng_err err;

    memset(&o, 0, sizeof o);
    if (c->params != NULL) { /* a second run of an update: start afresh */
        sodium_memzero(c->params, strlen(c->params));
        free(c->params);
        c->params = NULL;
    }
    err = ng_tenant_create(v, "alice", &o, now_s());
    if (err == NG_OK)
        err = ng_peer_export(v, "alice", c->outbox, now_s(), &c->params, NULL);
    if (err == NG_OK)
        err = ng_tenant_keypair(v, "alice", 0, &c->kp);
    return err;
}

struct tenants_ctx {
    size_t n;
    const char *params; /* alice's */
    const char *hook;   /* the backends' URL */
    uint8_t (*pub)[NG_KEY_BYTES];
    size_t entries;
    const char *failed; /* what failed, for the message */
};

static void
slug_of(char out[24], size_t i)
{
    snprintf(out, 24, "t%05zu", i % 100000000u);
}

/*
 * n tenants, each as `tenant create`, `backend add` (then disabled, as a
 * 410 leaves it) and `peer import` of alice's parameters would leave it.
 */
static ng_err
make_tenants(ng_vault *v, void *arg)
{
    struct tenants_ctx *c = arg;
    ng_tenant_opts o;
    char slug[24], id[NG_TENANT_ID_BYTES], used[64];
    ng_keypair kp;
    ng_err err = NG_OK;
    size_t i;

    memset(&o, 0, sizeof o);
    for (i = 0; i < c->n && err == NG_OK; i++) {
        slug_of(slug, i);
        if ((err = ng_tenant_create(v, slug, &o, now_s())) != NG_OK)
            c->failed = "tenant create";
        else if ((err = ng_tenant_backend_add(v, slug, c->hook, NULL, now_s(), id, NULL, 0)) != NG_OK)
            c->failed = "backend add";
        else if ((err = ng_tenant_backend_set_active(v, slug, id, 0, now_s())) != NG_OK)
            c->failed = "backend disable";
        else if ((err = ng_peer_import(v, slug, c->params, "alice", now_s(), used)) != NG_OK)
            c->failed = "peer import";
        else if ((err = ng_tenant_keypair(v, slug, 0, &kp)) != NG_OK)
            c->failed = "tenant keypair";
        if (err == NG_OK) {
            memcpy(c->pub[i], kp.pub, NG_KEY_BYTES);
            ng_keypair_wipe(&kp);
        }
    }
    c->entries = ng_vault_count(v);
    if (err)
        fprintf(stderr, "bench_memory: %s of tenant %zu: %s\n", c->failed, i - 1, ng_strerror(err));
    return err;
}

/* Runs fn in one ng_vault_update on g's vault (its configuration, key file and store, as the CLI opens them). */
static void
vault_update(const struct bench_gw *g, ng_vault_update_fn fn, void *arg)
{
    ng_cli_ctx c;

    if (ng_cli_ctx_open(&c, "bench_memory", g->cfg, 1) != 0)
        bench_die("cannot open the vault of %s", g->name);
    if (ng_cli_ctx_update(&c, fn, arg, "tenants") != 0) {
        ng_cli_ctx_close(&c);
        bench_die("vault update on %s failed", g->name);
    }
    ng_cli_ctx_close(&c);
}

/* ---- the queued messages ---- */

/*
 * per messages for each of n tenants, sealed X by alice to the tenant's key
 * and accepted into its inbox as the poller would, on g's Redis. The
 * number of records stored, and the size of one.
 */
static size_t
fill_inboxes(const struct bench_gw *g, const ng_keypair *alice, uint8_t (*pub)[NG_KEY_BYTES], size_t n, size_t per,
             size_t *record_len)
{
    static const char meta[] = "{\"content_type\":\"text/plain\"}";
    char url[PATH_MAX + 64], slug[24];
    uint8_t body[BODY_BYTES], parcel[4096];
    ng_queue_msg *msgs = calloc(per, sizeof *msgs);
    uint8_t **recs = calloc(per, sizeof *recs);
    ng_ss_cache *cache = NULL;
    ng_queue *q = NULL;
    size_t i, j, stored = 0;
    ng_err err;

    if (msgs == NULL || recs == NULL)
        bench_die("out of memory");
    snprintf(url, sizeof url, "unix:%s/redis/redis.sock", g->data);
    if ((err = ng_queue_redis_new(&q, url, 10000)) != NG_OK)
        bench_die("queue on %s: %s", url, ng_strerror(err));
    if (ng_ss_cache_new(&cache, 4 * n) != NG_OK)
        bench_die("out of memory");
    for (i = 0; i < sizeof body; i++)
        body[i] = (uint8_t)('a' + i % 26);
    for (i = 0; i < n; i++) {
        slug_of(slug, i);
        for (j = 0; j < per; j++) {
            ng_seal_params p;
            uint8_t id[NG_PARCEL_MESSAGE_ID_BYTES];
            uint64_t created = ng_parcel_now_ms();
            size_t plen;

            randombytes_buf(id, sizeof id);
            memset(&p, 0, sizeof p);
            p.pattern = NG_PATTERN_X;
            p.recipient_pub = pub[i];
            p.sender = alice;
            p.meta = (const uint8_t *)meta;
            p.meta_len = sizeof meta - 1;
            p.body = body;
            p.body_len = sizeof body;
            p.created_ms = created;
            p.ttl_ms = ttl_ms;
            p.message_id = id;
            p.cache = cache;
            if ((err = ng_parcel_seal(parcel, sizeof parcel, &plen, &p)) != NG_OK)
                bench_die("seal: %s", ng_strerror(err));
            if ((err = ng_receive_record(&recs[j], &msgs[j].len, "alice", parcel, plen)) != NG_OK)
                bench_die("record: %s", ng_strerror(err));
            memcpy(msgs[j].msg_id, id, sizeof id);
            msgs[j].expires_ms = created + ttl_ms;
            msgs[j].data = recs[j];
            *record_len = msgs[j].len;
        }
        if ((err = ng_queue_inbox_accept_many(q, slug, msgs, per)) != NG_OK)
            bench_die("inbox accept of %s: %s", slug, ng_strerror(err));
        for (j = 0; j < per; j++) {
            if (msgs[j].result == NG_OK)
                stored++;
            free(recs[j]);
            recs[j] = NULL;
        }
    }
    ng_ss_cache_free(cache);
    ng_queue_free(q);
    free(recs);
    free(msgs);
    return stored;
}

/* The waiting messages of n tenants, summed, as GET /v1/admin/tenants/{t}/queue counts them. */
static uint64_t
count_waiting(const struct bench_gw *g, size_t n)
{
    char url[PATH_MAX + 64], slug[24];
    ng_queue *q = NULL;
    uint64_t sum = 0, waiting, dead;
    size_t i;

    snprintf(url, sizeof url, "unix:%s/redis/redis.sock", g->data);
    if (ng_queue_redis_new(&q, url, 10000) != NG_OK)
        bench_die("queue on %s", url);
    for (i = 0; i < n; i++) {
        slug_of(slug, i);
        if (ng_queue_inbox_depth(q, slug, &waiting, &dead) != NG_OK)
            bench_die("inbox depth of %s", slug);
        sum += waiting;
    }
    ng_queue_free(q);
    return sum;
}

/* Waits until g's directory holds n tenants. */
static void
wait_directory(const struct bench_gw *g, size_t n)
{
    uint64_t t0 = bench_now_ms();

    while (metric(g, "ng_directory_tenants") != (double)n) {
        if (bench_now_ms() - t0 > START_TIMEOUT_MS)
            bench_die("gateway %s: the directory does not hold %zu tenants after %d ms", g->name, n, START_TIMEOUT_MS);
        bench_sleep_ms(100);
    }
}

static void
gw_start_loaded(struct bench_gw *g, size_t n)
{
    uint64_t t0 = bench_now_ms();

    bench_gw_start(g);
    wait_directory(g, n);
    printf("  %s ready with %zu tenants in %.1f s\n", g->name, n, (double)(bench_now_ms() - t0) / 1000.0);
}

static void
gw_stop_checked(struct bench_gw *g)
{
    char why[128];
    int st = bench_gw_stop(g);

    if (!bench_exited_zero(st)) {
        describe_status(why, sizeof why, st);
        bench_show_log_tail(g);
        bench_die("gateway %s: %s after SIGTERM", g->name, why);
    }
    if (bench_stop_redis(g))
        fprintf(stderr, "bench_memory: gateway %s left its redis-server running (stopped now)\n", g->name);
}

/*
 * Tenants "more-<from>" to "more-<to - 1>" through the CLI (so through the
 * running gateway's admin API), each waited for in the directory; the time
 * each create took in t[from..to).
 */
static void
more_tenants(const struct bench_gw *g, size_t base, size_t from, size_t to, double *t)
{
    char out[BENCH_OUT_MAX], slug[32];
    size_t k;
    uint64_t t0;

    for (k = from; k < to; k++) {
        snprintf(slug, sizeof slug, "more-%zu", k);
        t0 = bench_now_ms();
        BENCH_CLI(g, out, "tenant", "create", slug);
        t[k] = (double)(bench_now_ms() - t0) / 1000.0;
        wait_directory(g, base + k + 1);
    }
    if (to == 2 * MORE_TENANTS)
        qsort(t, to, sizeof *t, bench_cmp_double);
}

/* How many times s occurs in the file at path. */
static size_t
count_in_file(const char *path, const char *s)
{
    FILE *f = fopen(path, "r");
    char line[8192];
    size_t n = 0;

    if (f == NULL)
        return 0;
    while (fgets(line, sizeof line, f) != NULL)
        if (strstr(line, s) != NULL)
            n++;
    fclose(f);
    return n;
}

static int
memory_run(size_t tenants, size_t per, int settle_s)
{
    char out[BENCH_OUT_MAX], outbox[128], hook[128], vault_path[PATH_MAX] = "";
    struct alice_ctx alice;
    struct tenants_ctx tc;
    struct row rows[8];
    size_t stored, record_len = 0, nrows = 0, i, loads;
    uint64_t t0, waiting;
    double t_tenants, t_fill, t_cli[2 * MORE_TENANTS];
    long long d_used, d_gw;

    memset(rows, 0, sizeof rows);
    srv_start();
    snprintf(outbox, sizeof outbox, "http://127.0.0.1:%d/v1/outbox", srv.port);
    snprintf(hook, sizeof hook, "http://127.0.0.1:%d/hook", srv.port);
    bench_gw_init(&gw_a, NULL);
    bench_gw_init(&gw_b, NULL);
    printf("bench_memory: %zu tenants, %zu queued messages (%d-byte bodies), %d s of running per state\n", tenants,
           tenants * per, BODY_BYTES, settle_s);
    BENCH_CLI(&gw_a, out, "vault", "init");
    BENCH_CLI(&gw_b, out, "vault", "init");

    printf("baseline: no tenant\n");
    gw_start_loaded(&gw_b, 0);
    {
        ng_cli_ctx c;

        if (ng_cli_ctx_open(&c, "bench_memory", gw_b.cfg, 0) != 0)
            bench_die("cannot read %s", gw_b.cfg);
        snprintf(vault_path, sizeof vault_path, "%s", c.cfg.vault.path);
        ng_cli_ctx_close(&c);
    }
    rows[nrows].what = "baseline: no tenant, empty queues";
    settle_measure(&rows[nrows], &gw_b, vault_path, settle_s);
    heap_probe(&rows[nrows++], &gw_b, 1);
    gw_stop_checked(&gw_b);

    printf("creating %zu tenants in one vault update\n", tenants);
    memset(&alice, 0, sizeof alice);
    alice.outbox = outbox;
    vault_update(&gw_a, make_alice, &alice);
    memset(&tc, 0, sizeof tc);
    tc.n = tenants;
    tc.params = alice.params;
    tc.hook = hook;
    tc.pub = calloc(tenants ? tenants : 1, sizeof *tc.pub);
    if (tc.pub == NULL)
        bench_die("out of memory");
    t0 = bench_now_ms();
    vault_update(&gw_b, make_tenants, &tc);
    t_tenants = (double)(bench_now_ms() - t0) / 1000.0;
    printf("  %.1f s, %zu vault entries, vault file %.2f MiB\n", t_tenants, tc.entries,
           (double)file_size(vault_path) / 1048576.0);

    printf("%zu tenants\n", tenants);
    gw_start_loaded(&gw_b, tenants);
    rows[nrows].what = "tenants, empty queues";
    settle_measure(&rows[nrows++], &gw_b, vault_path, settle_s);

    printf("queueing %zu messages (sealed X, accepted %zu per tenant in one call)\n", tenants * per, per);
    t0 = bench_now_ms();
    stored = fill_inboxes(&gw_b, &alice.kp, tc.pub, tenants, per, &record_len);
    t_fill = (double)(bench_now_ms() - t0) / 1000.0;
    waiting = count_waiting(&gw_b, tenants);
    printf("  %zu stored in %.1f s (%zu-byte records), %llu waiting\n", stored, t_fill, record_len,
           (unsigned long long)waiting);
    if (stored != tenants * per || waiting != stored)
        bench_die("expected %zu messages waiting, %llu are", tenants * per, (unsigned long long)waiting);
    rows[nrows].what = "tenants, messages queued";
    settle_measure(&rows[nrows++], &gw_b, vault_path, settle_s);
    gw_stop_checked(&gw_b);

    printf("the same, restarted\n");
    gw_start_loaded(&gw_b, tenants);
    rows[nrows].what = "the same after a restart";
    settle_measure(&rows[nrows], &gw_b, vault_path, settle_s);
    heap_probe(&rows[nrows++], &gw_b, 0);
    waiting = count_waiting(&gw_b, tenants);
    if (waiting != stored)
        bench_die("after the restart %llu messages wait, not %zu", (unsigned long long)waiting, stored);

    /*
     * More tenants through the CLI, which goes through the running
     * gateway's admin API: what a create costs on the full vault, and the
     * memory after the directory reload each one causes.
     */
    printf("%d more tenants through the admin API, one by one\n", MORE_TENANTS);
    loads = count_in_file(gw_b.log, "\"directory loaded\"");
    more_tenants(&gw_b, tenants, 0, 1, t_cli);
    rows[nrows].what = "after 1 more tenant (a reload)";
    settle_measure(&rows[nrows++], &gw_b, vault_path, 1);
    more_tenants(&gw_b, tenants, 1, MORE_TENANTS, t_cli);
    rows[nrows].what = "after 6 more tenants (6 reloads)";
    settle_measure(&rows[nrows], &gw_b, vault_path, 1);
    heap_probe(&rows[nrows++], &gw_b, 1);
    loads = count_in_file(gw_b.log, "\"directory loaded\"") - loads;
    gw_stop_checked(&gw_b);

    /* The same with one malloc arena: the reloads run on several threads, each of which has its own. */
    printf("the same, restarted with MALLOC_ARENA_MAX=1\n");
    setenv("MALLOC_ARENA_MAX", "1", 1);
    gw_start_loaded(&gw_b, tenants + MORE_TENANTS);
    unsetenv("MALLOC_ARENA_MAX");
    rows[nrows].what = "restarted, MALLOC_ARENA_MAX=1";
    settle_measure(&rows[nrows++], &gw_b, vault_path, settle_s);
    more_tenants(&gw_b, tenants, MORE_TENANTS, 2 * MORE_TENANTS, t_cli);
    rows[nrows].what = "  and after 6 more tenants";
    settle_measure(&rows[nrows++], &gw_b, vault_path, 1);
    gw_stop_checked(&gw_b);

    print_table(rows, nrows);
    d_gw = rows[1].gw.rss_kb - rows[0].gw.rss_kb;
    d_used = rows[1].used_memory - rows[0].used_memory;
    if (tenants > 0)
        printf("per tenant:  gateway RSS %+.1f KiB (restarted: %+.1f KiB), Redis used_memory %+.0f B, vault %.0f B\n",
               (double)d_gw / (double)tenants, (double)(rows[3].gw.rss_kb - rows[0].gw.rss_kb) / (double)tenants,
               (double)d_used / (double)tenants, (double)(rows[1].vault_bytes - rows[0].vault_bytes) / (double)tenants);
    if (stored > 0)
        printf("per message: gateway RSS %+.2f KiB, Redis used_memory %+.0f B (restarted: %+.0f B), AOF %.0f B; "
               "the stored record is %zu B\n",
               (double)(rows[2].gw.rss_kb - rows[1].gw.rss_kb) / (double)stored,
               (double)(rows[2].used_memory - rows[1].used_memory) / (double)stored,
               (double)(rows[3].used_memory - rows[1].used_memory) / (double)stored,
               (double)(rows[2].aof_bytes - rows[1].aof_bytes) / (double)stored, record_len);
    for (i = 0; i < nrows; i++)
        if (rows[i].heap_in_use >= 0) {
            printf("%s: gateway heap %.1f MiB in use of %.1f MiB malloc holds; RSS %.1f MiB", rows[i].what,
                   (double)rows[i].heap_in_use / 1048576.0, (double)rows[i].heap_held / 1048576.0,
                   mib(rows[i].gw.rss_kb));
            if (rows[i].trimmed_rss_kb >= 0)
                printf(", %.1f after malloc_trim(0)", mib(rows[i].trimmed_rss_kb));
            printf("\n");
        }
    if (tenants > 0 && rows[0].heap_in_use >= 0 && rows[3].heap_in_use >= 0)
        printf("per tenant:  gateway heap in use %+.0f B\n",
               (double)(rows[3].heap_in_use - rows[0].heap_in_use) / (double)tenants);
    else
        printf("gateway heap: not probed (it takes gdb and ptrace permission)\n");
    printf("tenants created in one vault update: %.1f s for %zu (%zu vault entries of at most %d)\n", t_tenants,
           tenants, tc.entries, NG_VAULT_MAX_ENTRIES);
    printf("`noisegate tenant create` on that vault, through the running gateway: %.2f to %.2f s, median %.2f s; "
           "directory loads the first %d caused: %zu\n",
           t_cli[0], t_cli[2 * MORE_TENANTS - 1], t_cli[MORE_TENANTS], MORE_TENANTS, loads);
    printf("messages sealed and queued: %.1f s; stub polls answered: %lu; webhooks: %lu\n", t_fill,
           (unsigned long)atomic_load(&srv.polls), (unsigned long)atomic_load(&srv.others));

    MHD_stop_daemon(srv.d);
    sodium_memzero(alice.params, strlen(alice.params));
    free(alice.params);
    ng_keypair_wipe(&alice.kp);
    free(tc.pub);
    bench_remove_dir();
    return 0;
}

/* ---- --leaks ---- */

struct slot {
    CURL *h;
    struct curl_slist *hdr;
    char *body;
    char resp[RESP_MAX];
    struct bench_buf reply; /* into resp */
    size_t msgs;            /* in this request */
};

/* One message of the JSON forms; k is its number (its subject, "m<k>", is how the sink knows it). */
static size_t
message_json(char *out, size_t cap, size_t k)
{
    int n = snprintf(out, cap,
                     "{\"recipient\":\"bob\",\"content_type\":\"text/plain\",\"subject\":\"m%zu\","
                     "\"body\":\"leak check message %zu of the run\"}",
                     k, k);

    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

/* Request r of the run: the first half one message each, the rest in batches of BATCH. */
static char *
request_body(size_t r, size_t singles, size_t total, size_t *msgs)
{
    char one[256];
    size_t first, n, i, len = 0, cap;
    char *b;

    if (r < singles) {
        *msgs = 1;
        b = bench_xmalloc(sizeof one);
        if (message_json(b, sizeof one, r) == 0)
            bench_die("message too long");
        return b;
    }
    first = singles + (r - singles) * BATCH;
    n = total - first < BATCH ? total - first : BATCH;
    cap = n * sizeof one + 32;
    b = bench_xmalloc(cap);
    len = (size_t)snprintf(b, cap, "{\"messages\":[");
    for (i = 0; i < n; i++) {
        size_t m = message_json(one, sizeof one, first + i);

        if (m == 0 || len + m + 4 > cap)
            bench_die("batch too long");
        if (i > 0)
            b[len++] = ',';
        memcpy(b + len, one, m);
        len += m;
    }
    memcpy(b + len, "]}", 3);
    *msgs = n;
    return b;
}

/* body (malloc'd, s takes it) to url, signed v1 by key under webhook-id id. */
static void
slot_sign(struct slot *s, const char *url, const struct bench_secret *key, char *body, const char *id)
{
    free(s->body);
    s->body = body;
    bench_sign(&s->hdr, key, id, s->body, strlen(s->body));
    bench_buf_init(&s->reply, s->resp, sizeof s->resp);
    curl_easy_setopt(s->h, CURLOPT_URL, url);
    curl_easy_setopt(s->h, CURLOPT_HTTPHEADER, s->hdr);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDS, s->body);
    curl_easy_setopt(s->h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(s->body));
}

/* Request r of the run on s, with a fresh webhook-id. */
static void
slot_prepare(struct slot *s, const char *url, const struct bench_secret *key, size_t r, size_t singles, size_t total,
             const char *id_prefix)
{
    char id[64];

    snprintf(id, sizeof id, "%s%zu", id_prefix, r);
    slot_sign(s, url, key, request_body(r, singles, total, &s->msgs), id);
}

/*
 * Submits total messages to alice on gateway a, CONC requests at a time,
 * each signed with a fresh webhook-id; every answer must be 202.
 */
static void
submit_all(const struct bench_gw *a, const struct bench_secret *key, size_t total)
{
    struct slot slots[CONC];
    char url[160], id_prefix[32], hex[13];
    uint8_t rnd[6];
    size_t singles = total / 2, requests = singles + (total - singles + BATCH - 1) / BATCH, next = 0, done = 0, i;
    size_t accepted = 0;
    CURLM *m = curl_multi_init();
    int running;

    if (m == NULL)
        bench_die("curl_multi_init failed");
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(hex, sizeof hex, rnd, sizeof rnd);
    snprintf(id_prefix, sizeof id_prefix, "msg_%s_", hex);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/tenants/alice/messages", a->port);
    memset(slots, 0, sizeof slots);
    for (i = 0; i < CONC; i++) {
        slots[i].h = bench_easy(HTTP_TIMEOUT_MS, &slots[i].reply);
        curl_easy_setopt(slots[i].h, CURLOPT_PRIVATE, &slots[i]);
        if (next < requests) {
            slot_prepare(&slots[i], url, key, next++, singles, total, id_prefix);
            curl_multi_add_handle(m, slots[i].h);
        }
    }
    while (done < requests) {
        CURLMsg *msg;
        int left;

        curl_multi_perform(m, &running);
        while ((msg = curl_multi_info_read(m, &left)) != NULL) {
            struct slot *s;
            long status = -1;

            if (msg->msg != CURLMSG_DONE)
                continue;
            curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
            if (msg->data.result == CURLE_OK)
                curl_easy_getinfo(s->h, CURLINFO_RESPONSE_CODE, &status);
            if (status != 202)
                bench_die("a submission got %ld (%s): %.300s", status, curl_easy_strerror(msg->data.result), s->resp);
            accepted += s->msgs;
            done++;
            curl_multi_remove_handle(m, s->h);
            if (next < requests) {
                slot_prepare(s, url, key, next++, singles, total, id_prefix);
                curl_multi_add_handle(m, s->h);
                /* libcurl 7.88: a handle added in this loop starts only with the next perform (DESIGN.md) */
                curl_multi_perform(m, &running);
            }
        }
        if (done < requests)
            curl_multi_poll(m, NULL, 0, 100, NULL);
    }
    for (i = 0; i < CONC; i++) {
        curl_easy_cleanup(slots[i].h);
        curl_slist_free_all(slots[i].hdr);
        free(slots[i].body);
    }
    curl_multi_cleanup(m);
    if (accepted != total)
        bench_die("%zu of %zu messages accepted", accepted, total);
}

/* One POST of body to alice's messages on a, signed by key; the status, -1 if nothing answered. */
static long
post_once(const struct bench_gw *a, const struct bench_secret *key, const char *body)
{
    static unsigned long seq;
    struct slot s;
    char url[160], id[48];
    long status = -1;
    char *copy = bench_xmalloc(strlen(body) + 1);

    memcpy(copy, body, strlen(body) + 1);
    memset(&s, 0, sizeof s);
    s.h = bench_easy(HTTP_TIMEOUT_MS, &s.reply);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/tenants/alice/messages", a->port);
    snprintf(id, sizeof id, "msg_refusal_%lu_%lld", ++seq, (long long)bench_now_ms());
    slot_sign(&s, url, key, copy, id);
    if (curl_easy_perform(s.h) == CURLE_OK)
        curl_easy_getinfo(s.h, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_cleanup(s.h);
    curl_slist_free_all(s.hdr);
    free(s.body);
    return status;
}

/*
 * Requests the gateway refuses, n of each kind, so that its error paths
 * run under LeakSanitizer too: a wrong signature (401), an unknown
 * recipient (404), a body that is not JSON (400), a message without a
 * recipient (400); and /metrics of both gateways.
 */
static void
refusals(const struct bench_gw *a, const struct bench_gw *b, const struct bench_secret *key, int n)
{
    static const struct {
        const char *body;
        int wrong_key;
        long status;
    } kinds[] = {
        {"{\"recipient\":\"bob\",\"content_type\":\"text/plain\",\"body\":\"x\"}", 1, 401},
        {"{\"recipient\":\"nobody\",\"content_type\":\"text/plain\",\"body\":\"x\"}", 0, 404},
        {"{\"recipient\":", 0, 400},
        {"{\"content_type\":\"text/plain\",\"body\":\"x\"}", 0, 400},
    };
    struct bench_secret wrong = *key;
    char url[128];
    size_t k;
    long st;
    int i;

    wrong.secret[0] ^= 1;
    for (i = 0; i < n; i++)
        for (k = 0; k < sizeof kinds / sizeof kinds[0]; k++)
            if ((st = post_once(a, kinds[k].wrong_key ? &wrong : key, kinds[k].body)) != kinds[k].status)
                bench_die("%s%s: got %ld, expected %ld", kinds[k].wrong_key ? "(wrong key) " : "", kinds[k].body, st,
                          kinds[k].status);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", a->port);
    if (bench_http_get(url, NULL, 0) != 200)
        bench_die("GET %s failed", url);
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", b->port);
    if (bench_http_get(url, NULL, 0) != 200)
        bench_die("GET %s failed", url);
    sodium_memzero(&wrong, sizeof wrong);
}

/* 1 if path's bytes contain s (an ASan build imports __asan_init). */
static int
file_contains(const char *path, const char *s)
{
    FILE *f = fopen(path, "rb");
    size_t n = strlen(s), have = 0, i, r;
    static char buf[1 << 16];
    int found = 0;

    if (f == NULL)
        return 0;
    while (!found && (r = fread(buf + have, 1, sizeof buf - have, f)) > 0) {
        have += r;
        for (i = 0; i + n <= have && !found; i++)
            found = memcmp(buf + i, s, n) == 0;
        /* Keep the last n - 1 bytes: a match may straddle two reads. */
        if (have >= n) {
            memmove(buf, buf + have - (n - 1), n - 1);
            have = n - 1;
        }
    }
    fclose(f);
    return found;
}

/* Appends o to ASAN_OPTIONS (later options win), so that the children check for leaks whatever the caller set. */
static void
asan_options(const char *o)
{
    const char *cur = getenv("ASAN_OPTIONS");
    char v[1024];

    snprintf(v, sizeof v, "%s%s%s", cur != NULL ? cur : "", cur != NULL && cur[0] != '\0' ? ":" : "", o);
    setenv("ASAN_OPTIONS", v, 1);
}

static int
leak_run(size_t total)
{
    char out[BENCH_OUT_MAX], params[BENCH_OUT_MAX], sink_url[128], why_a[128], why_b[128];
    struct bench_secret alice_key, bob_key;
    uint64_t t0, t_sent, t_last = 0, t_all;
    unsigned long last = 0;
    int st_a, st_b, ok;

    if (!file_contains(bench.ng_bin, "__asan_init"))
        bench_die(
            "%s is not built with AddressSanitizer (make BUILD=build/asan SANITIZE=1 OPT=-O1 build/asan/noisegate)",
            bench.ng_bin);
    asan_options("detect_leaks=1");
    srv.expect = total;
    srv.tries = calloc(total ? total : 1, sizeof *srv.tries);
    srv.done = calloc(total ? total : 1, sizeof *srv.done);
    if (srv.tries == NULL || srv.done == NULL)
        bench_die("out of memory");
    srv_start();
    snprintf(sink_url, sizeof sink_url, "http://127.0.0.1:%d/hook", srv.port);
    bench_gw_init(&gw_a, BENCH_POLL_FAST);
    bench_gw_init(&gw_b, BENCH_POLL_FAST);
    printf("bench_memory --leaks: %zu messages through two gateways built with ASan (%s)\n", total, bench.ng_bin);
    printf("setting up with the CLI (under ASan too)\n");
    fflush(stdout);
    t0 = bench_now_ms();
    BENCH_CLI(&gw_a, out, "vault", "init");
    BENCH_CLI(&gw_b, out, "vault", "init");
    BENCH_CLI(&gw_a, out, "tenant", "create", "alice");
    BENCH_CLI(&gw_b, out, "tenant", "create", "bob");
    bench_backend_add(&gw_a, "alice", sink_url, &alice_key);
    bench_backend_add(&gw_b, "bob", sink_url, &bob_key);
    bench_peer_export(&gw_a, "alice", params, sizeof params);
    BENCH_CLI(&gw_b, out, "peer", "import", "bob", params, "--name", "alice");
    bench_peer_export(&gw_b, "bob", params, sizeof params);
    BENCH_CLI(&gw_a, out, "peer", "import", "alice", params, "--name", "bob");
    sodium_memzero(params, sizeof params);
    bench_gw_start(&gw_a);
    bench_gw_start(&gw_b);
    printf("  ready in %.1f s\n", (double)(bench_now_ms() - t0) / 1000.0);

    printf("submitting %zu messages to a (%zu one per request, the rest in batches of %d)\n", total, total / 2, BATCH);
    fflush(stdout);
    t0 = bench_now_ms();
    submit_all(&gw_a, &alice_key, total);
    t_sent = bench_now_ms() - t0;
    printf("  accepted in %.1f s (%.0f/s)\n", (double)t_sent / 1000.0, (double)total * 1000.0 / (double)t_sent);
    printf("and %d refused requests of each of 4 kinds (401, 404, 400, 400); on the admin API (the CLI with the "
           "gateways running): tenant list, show, create and delete (directory reloads)\n",
           REFUSALS);
    fflush(stdout);
    refusals(&gw_a, &gw_b, &alice_key, REFUSALS);
    BENCH_CLI(&gw_a, out, "tenant", "list");
    BENCH_CLI(&gw_b, out, "tenant", "show", "bob");
    BENCH_CLI(&gw_b, out, "tenant", "create", "carol");
    BENCH_CLI(&gw_b, out, "tenant", "delete", "carol");
    while (atomic_load(&srv.delivered) < total) {
        unsigned long d = atomic_load(&srv.delivered);

        if (d != last) {
            last = d;
            t_last = bench_now_ms();
        }
        if (t_last == 0)
            t_last = bench_now_ms();
        if (bench_now_ms() - t_last > DRAIN_TIMEOUT_MS / 4 || bench_now_ms() - t0 > DRAIN_TIMEOUT_MS)
            bench_die("only %lu of %zu messages reached bob's backend", d, total);
        if (waitpid(gw_a.pid, NULL, WNOHANG) == gw_a.pid || waitpid(gw_b.pid, NULL, WNOHANG) == gw_b.pid)
            bench_die("a gateway died during the run; see %s and %s", gw_a.log, gw_b.log);
        bench_sleep_ms(200);
    }
    t_all = bench_now_ms() - t0;
    printf("  all %zu delivered %.1f s after the first submission (%.0f/s end to end); %lu first attempts refused "
           "on purpose (503 or 500) and retried; %lu repeated deliveries\n",
           total, (double)t_all / 1000.0, (double)total * 1000.0 / (double)t_all,
           (unsigned long)atomic_load(&srv.refused), (unsigned long)atomic_load(&srv.dups));

    printf("SIGTERM to both gateways\n");
    fflush(stdout);
    t0 = bench_now_ms();
    st_b = bench_gw_stop(&gw_b);
    st_a = bench_gw_stop(&gw_a);
    printf("  stopped in %.1f s\n", (double)(bench_now_ms() - t0) / 1000.0);
    fflush(stdout);
    describe_status(why_a, sizeof why_a, st_a);
    describe_status(why_b, sizeof why_b, st_b);
    ok = bench_exited_zero(st_a) && bench_exited_zero(st_b);
    if (!bench_exited_zero(st_a))
        bench_show_log_tail(&gw_a);
    if (!bench_exited_zero(st_b))
        bench_show_log_tail(&gw_b);
    /* The gateways stop their redis-servers; one left behind is a fault of its own. */
    if (bench_stop_redis(&gw_a) + bench_stop_redis(&gw_b) > 0) {
        fprintf(stderr, "bench_memory: a gateway left its redis-server running\n");
        ok = 0;
    }
    MHD_stop_daemon(srv.d);
    free(srv.tries);
    free(srv.done);
    sodium_memzero(&alice_key, sizeof alice_key);
    sodium_memzero(&bob_key, sizeof bob_key);
    if (!ok) {
        fprintf(stderr, "bench_memory: gateway a: %s; gateway b: %s (logs above, and in %s)\n", why_a, why_b,
                bench.dir);
        return 1;
    }
    printf("no leaks: %zu messages, both gateways exited 0\n", total);
    bench_remove_dir();
    return 0;
}

/* ---- main ---- */

/* The value of --name=N in arg, or -1 if arg is not that option. */
static long
opt_num(const char *arg, const char *name)
{
    size_t n = strlen(name);
    char *end;
    long v;

    if (strncmp(arg, name, n) != 0 || arg[n] != '=')
        return -1;
    v = strtol(arg + n + 1, &end, 10);
    if (*end != '\0' || v < 0 || v > 100000000)
        bench_die("%s: expected a number", arg);
    return v;
}

int
main(int argc, char **argv)
{
    size_t tenants = TENANTS, per = PER_TENANT, messages = MESSAGES;
    int settle_s = SETTLE_S, leaks = 0, i;
    long v;

    bench_init("bench_memory", START_TIMEOUT_MS, STOP_TIMEOUT_MS);
    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--leaks") == 0)
            leaks = 1;
        else if ((v = opt_num(argv[i], "--tenants")) >= 0)
            tenants = (size_t)v;
        else if ((v = opt_num(argv[i], "--per-tenant")) >= 0)
            per = (size_t)v;
        else if ((v = opt_num(argv[i], "--settle")) >= 0)
            settle_s = (int)v;
        else if ((v = opt_num(argv[i], "--messages")) >= 0)
            messages = (size_t)v;
        else
            bench_die("usage: bench_memory [--tenants=N] [--per-tenant=N] [--settle=S] | --leaks [--messages=N]");
    }
    bench_begin("make bench-memory or make leak-check", "ngmem");
    return leaks ? leak_run(messages) : memory_run(tenants, per, settle_s);
}

/*
 * Queue throughput against the embedded redis-server (unix socket, AOF
 * with appendfsync everysec), with 1 KiB parcels, one client, no pipelining
 * beyond what the queue itself does:
 *
 *   outbox append          one parcel per call
 *   inbox accept+claim+ack the life of one delivered message: accept (the
 *                          replay check and the enqueue), claimed in
 *                          batches of 100, each batch acked in one call
 *
 * and in the same run, on the same server, redis-benchmark's XADD of a
 * 1 KiB value with one client and pipeline depth 1: what one round trip
 * per message costs. Each figure is the median of 5 runs; the ratios pair
 * each run with the redis-benchmark run next to it.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sodium.h>

#include "ng_queue.h"
#include "ng_queue_redis.h"
#include "ng_redis_embed.h"

enum { RUNS = 5, MESSAGES = 5000, BODY = 1024, BATCH = 100 };

static double
now_s(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint64_t
wall_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int
cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return (x > y) - (x < y);
}

static double
median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return v[n / 2];
}

static double
outbox_rate(ng_queue *q, const uint8_t *parcel)
{
    uint8_t kid[NG_QUEUE_KEY_ID_BYTES], mid[NG_QUEUE_MSG_ID_BYTES];
    char id[NG_QUEUE_ID_BYTES];
    double t0 = now_s();
    int i;

    randombytes_buf(kid, sizeof kid);
    for (i = 0; i < MESSAGES; i++) {
        randombytes_buf(mid, sizeof mid);
        if (ng_queue_outbox_append(q, "bench", kid, mid, wall_ms(), wall_ms() + 3600000, parcel, BODY, id) != NG_OK) {
            fprintf(stderr, "outbox append failed\n");
            exit(1);
        }
    }
    return MESSAGES / (now_s() - t0);
}

/*
 * The life of MESSAGES delivered messages: accepted one by one (batch 1,
 * as a push arrives) or in batches (as a poller accepts one fetch), then
 * claimed in batches of 100 and each batch acked in one call.
 */
static double
inbox_rate(ng_queue *q, const uint8_t *parcel, size_t accept_batch)
{
    ng_queue_msg m[BATCH];
    ng_queue_batch b;
    double t0 = now_s();
    size_t j, k, acked;
    int i, done = 0;

    for (i = 0; i < MESSAGES; i += (int)accept_batch) {
        for (k = 0; k < accept_batch; k++) {
            memset(&m[k], 0, sizeof m[k]);
            randombytes_buf(m[k].msg_id, sizeof m[k].msg_id);
            m[k].expires_ms = wall_ms() + 3600000;
            m[k].data = parcel;
            m[k].len = BODY;
        }
        if (ng_queue_inbox_accept_many(q, "bench", m, accept_batch) != NG_OK || m[0].result != NG_OK) {
            fprintf(stderr, "inbox accept failed\n");
            exit(1);
        }
    }
    while (done < MESSAGES) {
        const char *ids[BATCH];

        if (ng_queue_inbox_claim(q, "bench", "bench", BATCH, 60000, &b) != NG_OK || b.n == 0) {
            fprintf(stderr, "inbox claim failed\n");
            exit(1);
        }
        for (j = 0; j < b.n; j++)
            ids[j] = b.items[j].id;
        if (ng_queue_inbox_ack_many(q, "bench", ids, b.n, &acked) != NG_OK || acked != b.n) {
            fprintf(stderr, "inbox ack failed\n");
            exit(1);
        }
        done += (int)b.n;
        ng_queue_batch_free(&b);
    }
    return MESSAGES / (now_s() - t0);
}

/* redis-benchmark's XADD rate: one client, pipeline 1, a 1 KiB value; from its -q line. */
static double
xadd_rate(const char *sock)
{
    char value[BODY + 1], n[16], line[4096];
    const char *argv[] = {"redis-benchmark", "-s", sock, "-c",  "1", "-P", "1", "-n", n, "-q", "XADD",
                          "ngbench:xadd",    "*",  "p",  value, NULL};
    int fds[2];
    pid_t pid;
    FILE *f;
    double rate = 0;

    memset(value, 'x', BODY);
    value[BODY] = '\0';
    snprintf(n, sizeof n, "%d", MESSAGES);
    if (pipe(fds) != 0 || (pid = fork()) < 0)
        return 0;
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    f = fdopen(fds[0], "r");
    /* "XADD ...: 12345.67 requests per second, p50=..." after carriage-return progress lines. */
    while (f != NULL && fgets(line, sizeof line, f) != NULL) {
        char *p = strstr(line, " requests per second"), *q;
        if (p == NULL)
            continue;
        *p = '\0';
        q = strrchr(line, ' ');
        rate = q != NULL ? strtod(q + 1, NULL) : 0;
    }
    if (f != NULL)
        fclose(f);
    waitpid(pid, NULL, 0);
    return rate;
}

int
main(void)
{
    double out[RUNS], in[RUNS], inb[RUNS], xadd[RUNS], r_out[RUNS], r_in[RUNS], r_inb[RUNS];
    char dir[] = "/tmp/ngbench-XXXXXX", err[512], cmd[64];
    uint8_t parcel[BODY];
    ng_redis_embed *e;
    const char *sock;
    ng_queue *q;
    int i;

    if (sodium_init() < 0 || mkdtemp(dir) == NULL)
        return 1;
    signal(SIGPIPE, SIG_IGN);
    /* The gateway's own embedded server, as it runs by default. */
    if (ng_redis_embed_start(&e, dir, NG_REDIS_EMBED_FSYNC_EVERYSEC, err, sizeof err) != NG_OK) {
        fprintf(stderr, "bench_queue: %s\n", err);
        return 1;
    }
    sock = ng_redis_embed_url(e) + 5; /* past "unix:" */
    if (ng_queue_redis_new(&q, ng_redis_embed_url(e), 5000) != NG_OK)
        return 1;
    randombytes_buf(parcel, sizeof parcel);
    for (i = 0; i < RUNS; i++) {
        xadd[i] = xadd_rate(sock);
        out[i] = outbox_rate(q, parcel);
        in[i] = inbox_rate(q, parcel, 1);
        inb[i] = inbox_rate(q, parcel, BATCH);
        r_out[i] = xadd[i] > 0 ? out[i] / xadd[i] : 0;
        r_in[i] = xadd[i] > 0 ? in[i] / xadd[i] : 0;
        r_inb[i] = xadd[i] > 0 ? inb[i] / xadd[i] : 0;
    }
    printf("queue benchmark: the embedded redis-server (unix socket, AOF everysec), 1 KiB, one client,\n"
           "median of %d runs of %d messages\n",
           RUNS, MESSAGES);
    printf("  %-44s %10.0f /s\n", "redis-benchmark XADD (-c 1 -P 1, 1 KiB)", median(xadd, RUNS));
    printf("  %-44s %10.0f /s   ratio %.2f (target >= 0.70)\n", "outbox append", median(out, RUNS),
           median(r_out, RUNS));
    printf("  %-44s %10.0f /s   ratio %.2f\n", "inbox accept (one by one) + claim + ack", median(in, RUNS),
           median(r_in, RUNS));
    printf("  %-44s %10.0f /s   ratio %.2f (target >= 0.70)\n", "inbox accept (batches of 100) + claim + ack",
           median(inb, RUNS), median(r_inb, RUNS));
    ng_queue_free(q);
    ng_redis_embed_free(e);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

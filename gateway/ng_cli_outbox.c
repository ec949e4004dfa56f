/*
 * noisegate outbox put|list|fetch: a tenant's outboxes in the configured
 * store, offline. With no redis.url this starts the embedded redis-server
 * under data_dir for the length of the command (and refuses if a running
 * gateway owns it), which is what the README's run command shows.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_vault.h"
#include "ng_hex.h"
#include "ng_io.h"
#include "ng_parcel.h"
#include "ng_queue.h"
#include "ng_queue_http.h"
#include "ng_queue_redis.h"
#include "ng_redis_embed.h"
#include "ng_tenant.h"

enum { MAX_LIST = 1000 };

struct store {
    ng_queue *q;
    ng_redis_embed *embed;
};

static int
store_open(const char *cmd, const ng_config *cfg, struct store *s)
{
    char msg[NG_REDIS_EMBED_ERROR_BYTES];
    ng_err err;

    memset(s, 0, sizeof *s);
    if (cfg->outbox.store == NG_CONFIG_OUTBOX_STORE_HTTP) {
        err = ng_queue_http_new(&s->q, cfg->outbox.http_url, cfg->outbox.http_timeout_ms);
    } else if (cfg->redis.url[0] != '\0') {
        err = ng_queue_redis_new(&s->q, cfg->redis.url, cfg->redis.timeout_ms);
    } else {
        err = ng_redis_embed_start(&s->embed, cfg->data_dir, (ng_redis_embed_fsync)cfg->redis.appendfsync, msg,
                                   sizeof msg);
        if (err)
            return ng_cli_fail(NG_EXIT_FAILED, cmd, "embedded redis-server: %s", msg);
        err = ng_queue_redis_new(&s->q, ng_redis_embed_url(s->embed), cfg->redis.timeout_ms);
    }
    return err ? ng_cli_fail(NG_EXIT_FAILED, cmd, "queue store: %s", ng_strerror(err)) : 0;
}

static void
store_close(struct store *s)
{
    ng_queue_free(s->q);
    ng_redis_embed_free(s->embed);
    memset(s, 0, sizeof *s);
}

static int
parse_kid(const char *cmd, const char *hex, uint8_t kid[NG_QUEUE_KEY_ID_BYTES])
{
    if (ng_hex_decode(kid, NG_QUEUE_KEY_ID_BYTES, hex, strlen(hex)) != NG_OK)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "'%s': expected a key id of 64 hex characters", hex);
    return 0;
}

static int
outbox_put(const char *cmd, struct store *s, const char *tenant, const char *in)
{
    char id[NG_QUEUE_ID_BYTES];
    ng_parcel_header h;
    uint8_t *parcel;
    size_t len;
    ng_err err;
    int rc = ng_cli_read_input(cmd, in, &parcel, &len);

    if (rc != 0)
        return rc;
    /* Only whole, well-formed parcels: peers will trust the header to route and expire them. */
    err = ng_parcel_inspect(&h, parcel, len, 0);
    if (err)
        rc = ng_cli_fail(NG_EXIT_FAILED, cmd, "not a valid parcel: %s", ng_strerror(err));
    else if ((err = ng_queue_outbox_append(s->q, tenant, h.recipient_key_id, h.message_id, h.created_ms, h.expires_ms,
                                           parcel, len, id)) != NG_OK)
        rc = ng_cli_fail(NG_EXIT_FAILED, cmd, "outbox of tenant %s: %s", tenant, ng_strerror(err));
    else
        printf("%s\n", id);
    free(parcel);
    return rc;
}

static int
outbox_list(const char *cmd, struct store *s, const char *tenant, const uint8_t *kid, const char *after, size_t limit,
            int as_json)
{
    ng_queue_batch b;
    json_t *list;
    size_t i;
    ng_err err = ng_queue_outbox_read(s->q, tenant, kid, after, limit, &b);

    if (err)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "outbox of tenant %s: %s", tenant, ng_strerror(err));
    list = json_array();
    for (i = 0; i < b.n; i++) {
        ng_parcel_header h;
        json_int_t exp =
            ng_parcel_inspect(&h, b.items[i].data, b.items[i].len, 0) == NG_OK ? (json_int_t)h.expires_ms : 0;
        if (as_json)
            json_array_append_new(list, json_pack("{s:s, s:I, s:I}", "id", b.items[i].id, "size",
                                                  (json_int_t)b.items[i].len, "expires_ms", exp));
        else
            printf("%-40s %8zu bytes  expires %lld\n", b.items[i].id, b.items[i].len, (long long)exp);
    }
    if (as_json) {
        json_t *out = json_pack("{s:o, s:s}", "parcels", list, "next", b.next);
        json_dumpf(out, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(out);
    } else {
        json_decref(list);
    }
    ng_queue_batch_free(&b);
    return NG_EXIT_OK;
}

/* The next parcel after the cursor into out; its id, the next cursor, on stderr. */
static int
outbox_fetch(const char *cmd, struct store *s, const char *tenant, const uint8_t *kid, const char *after,
             const char *out)
{
    ng_queue_batch b;
    int rc = NG_EXIT_OK;
    ng_err err = ng_queue_outbox_read(s->q, tenant, kid, after, 1, &b);

    if (err)
        return ng_cli_fail(NG_EXIT_FAILED, cmd, "outbox of tenant %s: %s", tenant, ng_strerror(err));
    if (b.n == 0)
        rc = ng_cli_fail(NG_EXIT_FAILED, cmd, "outbox of tenant %s: nothing after '%s'", tenant,
                         after != NULL ? after : "");
    else if (ng_io_write_all(out, b.items[0].data, b.items[0].len, 0644) != NG_OK)
        rc = ng_cli_fail(NG_EXIT_USAGE, cmd, "%s: cannot write", out != NULL ? out : "standard output");
    else
        fprintf(stderr, "%s\n", b.items[0].id);
    ng_queue_batch_free(&b);
    return rc;
}

int
ng_cli_outbox(int argc, char **argv)
{
    const char *config, *pos[4], *after = NULL, *limit_s = NULL, *out = NULL;
    uint8_t kid[NG_QUEUE_KEY_ID_BYTES];
    unsigned long limit = 100;
    int npos, as_json = 0, rc;
    const ng_cli_opt opts[] = {{"--json", NULL, &as_json},
                               {"--after", &after, NULL},
                               {"--limit", &limit_s, NULL},
                               {"--output", &out, NULL},
                               {NULL, NULL, NULL}};
    char msg[NG_CONFIG_ERR_BYTES];
    struct store s;
    ng_config cfg;

    rc = ng_cli_parse("outbox", argc, argv, opts, &config, pos, 4, &npos);
    if (rc != 0)
        return rc;
    if (npos < 2 || (strcmp(pos[0], "put") == 0 && npos > 3) ||
        ((strcmp(pos[0], "list") == 0 || strcmp(pos[0], "fetch") == 0) && npos != 3) ||
        (strcmp(pos[0], "put") != 0 && strcmp(pos[0], "list") != 0 && strcmp(pos[0], "fetch") != 0))
        return ng_cli_fail(NG_EXIT_USAGE, "outbox",
                           "expected put TENANT [PARCEL], list TENANT KEYID or fetch TENANT KEYID (noisegate help)");
    if (!ng_tenant_slug_ok(pos[1]))
        return ng_cli_fail(NG_EXIT_USAGE, "outbox", "'%s': a tenant id is 1-63 of a-z, 0-9 and '-'", pos[1]);
    if (npos == 3 && strcmp(pos[0], "put") != 0 && (rc = parse_kid("outbox", pos[2], kid)) != 0)
        return rc;
    if (limit_s != NULL) {
        char *end;
        limit = strtoul(limit_s, &end, 10);
        if (*limit_s == '\0' || *end != '\0' || limit == 0 || limit > MAX_LIST)
            return ng_cli_fail(NG_EXIT_USAGE, "outbox", "--limit: expected 1-%d", MAX_LIST);
    }
    if (ng_config_load(&cfg, config, msg, sizeof msg) != NG_OK)
        return ng_cli_fail(NG_EXIT_USAGE, "outbox", "%s", msg);
    rc = store_open("outbox", &cfg, &s);
    if (rc == 0) {
        if (strcmp(pos[0], "put") == 0)
            rc = outbox_put("outbox", &s, pos[1], npos == 3 ? pos[2] : NULL);
        else if (strcmp(pos[0], "list") == 0)
            rc = outbox_list("outbox", &s, pos[1], kid, after, limit, as_json);
        else
            rc = outbox_fetch("outbox", &s, pos[1], kid, after, out);
    }
    store_close(&s);
    ng_config_free(&cfg);
    return rc;
}

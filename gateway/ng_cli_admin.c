/*
 * The commands that talk to a running gateway through its admin API (the
 * admin socket, or admin.address:admin.port when there is no socket), with
 * the token in admin.token_file:
 *
 *   noisegate admin METHOD PATH [JSON]        any admin route; the reply on stdout
 *   noisegate dead list TENANT [--after ID] [--limit N]
 *   noisegate dead replay TENANT ID
 *   noisegate pair TENANT URL                 automatic backend pairing
 *
 * Exit status: 0 for a 2xx answer, 1 for any other answer, 2 for usage or
 * when no gateway answers.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_cli.h"
#include "ng_cli_admin.h"
#include "ng_curlbuf.h"
#include "ng_cli_vault.h"
#include "ng_io.h"

/* The largest answer: a page of 1000 dead letters, or a tenant with every peer. */
enum { MAX_REPLY = 16 << 20 };

/* Where the admin API listens, for messages. */
static const char *
where(const ng_config *cfg)
{
    return cfg->admin.socket[0] != '\0' ? cfg->admin.socket : cfg->admin.address;
}

int
ng_cli_admin_call(const char *cmd, const ng_config *cfg, const char *method, const char *path, const char *body,
                  long *status, char **reply, size_t *len)
{
    uint8_t token[32];
    char hex[65], auth[96], url[4300];
    struct curl_slist *h = NULL;
    ng_curlbuf r;
    CURLcode rc;
    CURL *c;

    *status = 0;
    *reply = NULL;
    *len = 0;
    if (path[0] != '/')
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "the path must start with /");
    /* Made by the gateway's first start: without it no gateway has run with this configuration. */
    if (ng_io_read_hex_file(cfg->admin.token_file, token, sizeof token) != NG_OK)
        return NG_CLI_NO_GATEWAY;
    sodium_bin2hex(hex, sizeof hex, token, sizeof token);
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", hex);
    sodium_memzero(token, sizeof token);
    sodium_memzero(hex, sizeof hex);
    c = curl_easy_init();
    if (c == NULL) {
        sodium_memzero(auth, sizeof auth);
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "out of memory");
    }
    if (cfg->admin.socket[0] != '\0') {
        snprintf(url, sizeof url, "http://localhost%s", path);
        curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, cfg->admin.socket);
    } else {
        snprintf(url, sizeof url, "http://%s%s%s:%d%s", strchr(cfg->admin.address, ':') ? "[" : "", cfg->admin.address,
                 strchr(cfg->admin.address, ':') ? "]" : "", cfg->admin.port, path);
    }
    h = curl_slist_append(h, auth);
    sodium_memzero(auth, sizeof auth);
    if (body != NULL) {
        h = curl_slist_append(h, "content-type: application/json");
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
    }
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    curl_easy_setopt(c, CURLOPT_PROXY, "");
    ng_curlbuf_init(&r, MAX_REPLY);
    rc = (CURLcode)ng_curlbuf_attach(c, &r);
    if (rc == CURLE_OK)
        rc = curl_easy_perform(c);
    curl_slist_free_all(h);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(c);
    if (rc != CURLE_OK) {
        ng_curlbuf_free(&r);
        /* Nothing listening: no gateway runs. Anything else (a timeout) is one that does not answer. */
        if (rc == CURLE_COULDNT_CONNECT)
            return NG_CLI_NO_GATEWAY;
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "the gateway on %s does not answer: %s", where(cfg),
                           rc == CURLE_FILESIZE_EXCEEDED || rc == CURLE_WRITE_ERROR ? "reply too large"
                                                                                    : curl_easy_strerror(rc));
    }
    /* Handed over whole: the caller wipes and frees it. */
    *reply = r.data != NULL ? r.data : strdup("");
    *len = r.len;
    return *reply != NULL ? 0 : ng_cli_fail(NG_EXIT_USAGE, cmd, "out of memory");
}

/* One admin request; the exit code, the reply printed. */
static int
request(const char *cmd, const ng_config *cfg, const char *method, const char *path, const char *body)
{
    char *reply;
    size_t len;
    long status;
    int rc = ng_cli_admin_call(cmd, cfg, method, path, body, &status, &reply, &len);

    if (rc == NG_CLI_NO_GATEWAY)
        return ng_cli_fail(NG_EXIT_USAGE, cmd, "no gateway answers on %s (admin token %s)", where(cfg),
                           cfg->admin.token_file);
    if (rc != 0)
        return rc;
    if (len > 0)
        printf("%s\n", reply);
    sodium_memzero(reply, len);
    free(reply);
    return status >= 200 && status < 300 ? NG_EXIT_OK : NG_EXIT_FAILED;
}

static int
with_config(const char *cmd, const char *config, const char *method, const char *path, const char *body)
{
    ng_cli_ctx c;
    int rc = ng_cli_ctx_open(&c, cmd, config, 0);

    if (rc == 0)
        rc = request(cmd, &c.cfg, method, path, body);
    ng_cli_ctx_close(&c);
    return rc;
}

int
ng_cli_admin(int argc, char **argv)
{
    const char *config, *pos[3];
    int npos, rc = ng_cli_parse("admin", argc, argv, NULL, &config, pos, 3, &npos);

    if (rc != 0)
        return rc;
    if (npos < 2 || (strcmp(pos[0], "GET") != 0 && strcmp(pos[0], "POST") != 0 && strcmp(pos[0], "DELETE") != 0))
        return ng_cli_fail(NG_EXIT_USAGE, "admin", "expected GET|POST|DELETE PATH [JSON]");
    return with_config("admin", config, pos[0], pos[1], npos == 3 ? pos[2] : NULL);
}

/* A tenant or dead-letter id as it may appear in a path. */
static int
path_safe(const char *s)
{
    return s[0] != '\0' && strlen(s) < 100 && strspn(s, "abcdefghijklmnopqrstuvwxyz0123456789-") == strlen(s);
}

int
ng_cli_dead(int argc, char **argv)
{
    const char *config, *pos[3], *after = NULL, *limit = NULL;
    const ng_cli_opt opts[] = {{"--after", &after, NULL}, {"--limit", &limit, NULL}, {NULL, NULL, NULL}};
    char path[512];
    int npos, rc = ng_cli_parse("dead", argc, argv, opts, &config, pos, 3, &npos);

    if (rc != 0)
        return rc;
    if (npos == 2 && strcmp(pos[0], "list") == 0 && path_safe(pos[1]) && (after == NULL || path_safe(after)) &&
        (limit == NULL || strspn(limit, "0123456789") == strlen(limit))) {
        snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead?limit=%s%s%s", pos[1], limit != NULL ? limit : "100",
                 after != NULL ? "&after=" : "", after != NULL ? after : "");
        return with_config("dead", config, "GET", path, NULL);
    }
    if (npos == 3 && strcmp(pos[0], "replay") == 0 && path_safe(pos[1]) && path_safe(pos[2])) {
        snprintf(path, sizeof path, "/v1/admin/tenants/%s/dead/%s/replay", pos[1], pos[2]);
        return with_config("dead", config, "POST", path, NULL);
    }
    return ng_cli_fail(NG_EXIT_USAGE, "dead", "expected list TENANT [--after ID] [--limit N] | replay TENANT ID");
}

int
ng_cli_pair(int argc, char **argv)
{
    const char *config, *pos[2];
    char path[256], *body;
    json_t *doc;
    int npos, rc = ng_cli_parse("pair", argc, argv, NULL, &config, pos, 2, &npos);

    if (rc != 0)
        return rc;
    if (npos != 2 || !path_safe(pos[0]))
        return ng_cli_fail(NG_EXIT_USAGE, "pair", "expected TENANT URL");
    snprintf(path, sizeof path, "/v1/admin/tenants/%s/pairings", pos[0]);
    doc = json_pack("{s:s}", "url", pos[1]);
    body = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (body == NULL)
        return ng_cli_fail(NG_EXIT_USAGE, "pair", "the URL is not text");
    rc = with_config("pair", config, "POST", path, body);
    free(body);
    return rc;
}

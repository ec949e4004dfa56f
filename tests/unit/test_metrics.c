/*
 * Metrics in the Prometheus text format: the exact output for a small
 * registry, label escaping and label rules, cumulative histogram buckets,
 * counters that never go down, the series bound, exact totals from many
 * threads, and output that parses line by line as the text format.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <math.h>
#include <pthread.h>

#include "ng_metrics.h"

enum {
    N_THREADS = 8,
    THREAD_ADDS = 100000,
};

#define ERRORS_HEAD                                                                                                    \
    "# HELP ng_metrics_errors_total Metric updates refused: unknown family, wrong type, bad value or labels, series "  \
    "bound.\n"                                                                                                         \
    "# TYPE ng_metrics_errors_total counter\n"

static char *
render(ng_metrics *m)
{
    char *text = NULL;
    size_t len = 0;

    assert_int_equal(ng_metrics_render(m, &text, &len), NG_OK);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* The value on the line that starts with series and a space; NAN if there is none. */
static double
sample_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    const char *line;

    for (line = text; *line != '\0'; line = strchr(line, '\n') + 1)
        if (strncmp(line, series, n) == 0 && line[n] == ' ')
            return strtod(line + n + 1, NULL);
    return NAN;
}

static size_t
count_prefix(const char *text, const char *prefix)
{
    size_t n = 0, plen = strlen(prefix);
    const char *line;

    for (line = text; *line != '\0'; line = strchr(line, '\n') + 1)
        n += strncmp(line, prefix, plen) == 0;
    return n;
}

static double
errors(ng_metrics *m)
{
    char *text = render(m);
    double v = sample_value(text, "ng_metrics_errors_total");

    free(text);
    return v;
}

static void
test_render_exact(void **state)
{
    ng_metrics *m;
    char *text;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(
        ng_metrics_define(m, "ng_http_requests_total", NG_METRIC_COUNTER, "HTTP requests by route and status."), NG_OK);
    assert_int_equal(ng_metrics_define(m, "ng_store_up", NG_METRIC_GAUGE, "1 if the store answered."), NG_OK);
    assert_int_equal(ng_metrics_define(m, "ng_idle", NG_METRIC_GAUGE, "Never set."), NG_OK);
    /* The same series whichever order its labels come in. */
    ng_metrics_add(m, "ng_http_requests_total", (const char *[]){"status", "200", "route", "/healthz", NULL}, 1);
    ng_metrics_add(m, "ng_http_requests_total", (const char *[]){"route", "/healthz", "status", "200", NULL}, 2);
    ng_metrics_add(m, "ng_http_requests_total", (const char *[]){"route", "/healthz", "status", "503", NULL}, 0.5);
    ng_metrics_add(m, "ng_http_requests_total", (const char *[]){"route", "/admin", "status", "404", NULL}, 1);
    ng_metrics_set(m, "ng_store_up", NULL, 1);
    text = render(m);
    assert_string_equal(text, ERRORS_HEAD "ng_metrics_errors_total 0\n"
                                          "# HELP ng_http_requests_total HTTP requests by route and status.\n"
                                          "# TYPE ng_http_requests_total counter\n"
                                          "ng_http_requests_total{route=\"/admin\",status=\"404\"} 1\n"
                                          "ng_http_requests_total{route=\"/healthz\",status=\"200\"} 3\n"
                                          "ng_http_requests_total{route=\"/healthz\",status=\"503\"} 0.5\n"
                                          "# HELP ng_store_up 1 if the store answered.\n"
                                          "# TYPE ng_store_up gauge\n"
                                          "ng_store_up 1\n"
                                          "# HELP ng_idle Never set.\n"
                                          "# TYPE ng_idle gauge\n");
    free(text);
    ng_metrics_free(m);
}

static void
test_values_and_help_escaped(void **state)
{
    ng_metrics *m;
    char *text;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "esc", NG_METRIC_GAUGE, "a \\ b\nc \"d\""), NG_OK);
    ng_metrics_set(m, "esc", (const char *[]){"v", "back\\slash \"quoted\"\nnew line", NULL}, 0.1);
    ng_metrics_set(m, "esc", (const char *[]){"v", "", NULL}, 1e21);
    ng_metrics_set(m, "esc", (const char *[]){"v", "\xc3\xa9t\xc3\xa9", NULL}, -2.5);
    ng_metrics_set(m, "esc", (const char *[]){"v", "inf", NULL}, INFINITY);
    ng_metrics_set(m, "esc", (const char *[]){"v", "minf", NULL}, -INFINITY);
    ng_metrics_set(m, "esc", (const char *[]){"v", "nan", NULL}, NAN);
    text = render(m);
    /* HELP escapes backslash and newline only; label values also '"'. Values read back exactly. */
    assert_string_equal(text, ERRORS_HEAD "ng_metrics_errors_total 0\n"
                                          "# HELP esc a \\\\ b\\nc \"d\"\n"
                                          "# TYPE esc gauge\n"
                                          "esc{v=\"\"} 1e+21\n"
                                          "esc{v=\"back\\\\slash \\\"quoted\\\"\\nnew line\"} 0.1\n"
                                          "esc{v=\"inf\"} +Inf\n"
                                          "esc{v=\"minf\"} -Inf\n"
                                          "esc{v=\"nan\"} NaN\n"
                                          "esc{v=\"\xc3\xa9t\xc3\xa9\"} -2.5\n");
    free(text);
    ng_metrics_free(m);
}

static void
test_label_rules(void **state)
{
    char long_value[NG_METRICS_MAX_LABEL_TEXT], *text;
    ng_metrics *m;

    (void)state;
    /* a="x...x" with this value is 3 bytes over the bound. */
    memset(long_value, 'x', sizeof long_value - 1);
    long_value[sizeof long_value - 1] = '\0';
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "c", NG_METRIC_COUNTER, "c"), NG_OK);
    /* Each refused, and counted. */
    ng_metrics_add(m, "c", (const char *[]){"le", "1", NULL}, 1);
    ng_metrics_add(m, "c", (const char *[]){"__name__", "x", NULL}, 1);
    ng_metrics_add(m, "c", (const char *[]){"1a", "x", NULL}, 1);
    ng_metrics_add(m, "c", (const char *[]){"a-b", "x", NULL}, 1);
    ng_metrics_add(m, "c", (const char *[]){"a:b", "x", NULL}, 1);
    ng_metrics_add(m, "c", (const char *[]){"", "x", NULL}, 1);
    ng_metrics_add(m, "c", (const char *[]){"a", NULL}, 1);                 /* a name without a value */
    ng_metrics_add(m, "c", (const char *[]){"a", "1", "a", "2", NULL}, 1);  /* a repeated name */
    ng_metrics_add(m, "c", (const char *[]){"a", "\xff", NULL}, 1);         /* not UTF-8 */
    ng_metrics_add(m, "c", (const char *[]){"a", "\xed\xa0\x80", NULL}, 1); /* a surrogate */
    ng_metrics_add(m, "c", (const char *[]){"a", "\xc0\xaf", NULL}, 1);     /* overlong */
    ng_metrics_add(m, "c", (const char *[]){"a", long_value, NULL}, 1);     /* over the label text bound */
    ng_metrics_add(m, "c",
                   (const char *[]){"a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6", "g", "7", "h", "8", "i",
                                    "9", NULL},
                   1); /* nine pairs */
    assert_true(errors(m) == 13);
    text = render(m);
    assert_int_equal(count_prefix(text, "c{"), 0);
    free(text);

    /* At the bounds, accepted. */
    ng_metrics_add(m, "c", (const char *[]){"a", long_value + 1000, "_b", "\xf4\x8f\xbf\xbf", NULL}, 1);
    ng_metrics_add(
        m, "c", (const char *[]){"a", "1", "b", "2", "c", "3", "d", "4", "e", "5", "f", "6", "g", "7", "h", "8", NULL},
        1);
    ng_metrics_add(m, "c", (const char *[]){NULL}, 1);
    ng_metrics_add(m, "c", NULL, 1);
    text = render(m);
    assert_true(sample_value(text, "ng_metrics_errors_total") == 13);
    assert_true(sample_value(text, "c{_b=\"\xf4\x8f\xbf\xbf\",a=\"xxxxxxxxxxxxxxxxxxxxxxx\"}") == 1);
    assert_true(sample_value(text, "c{a=\"1\",b=\"2\",c=\"3\",d=\"4\",e=\"5\",f=\"6\",g=\"7\",h=\"8\"}") == 1);
    assert_true(sample_value(text, "c") == 2); /* an empty list is no labels */
    free(text);
    ng_metrics_free(m);
}

static void
test_histogram(void **state)
{
    ng_metrics *m;
    char *text;
    const char *h;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "lat_seconds", NG_METRIC_HISTOGRAM, "Latency."), NG_OK);
    /* Binary fractions, so that the sum is exact. */
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/a", NULL}, 0.0009765625); /* le 0.001 */
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/a", NULL}, 0.00390625);   /* le 0.005 */
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/a", NULL}, 0.5);          /* le 0.5: inclusive */
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/a", NULL}, 0.75);         /* le 1 */
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/a", NULL}, 32);           /* +Inf only */
    ng_metrics_observe(m, "lat_seconds", NULL, 10);
    text = render(m);
    h = strstr(text, "# HELP lat_seconds");
    assert_non_null(h);
    assert_string_equal(h, "# HELP lat_seconds Latency.\n"
                           "# TYPE lat_seconds histogram\n"
                           "lat_seconds_bucket{le=\"0.001\"} 0\n"
                           "lat_seconds_bucket{le=\"0.0025\"} 0\n"
                           "lat_seconds_bucket{le=\"0.005\"} 0\n"
                           "lat_seconds_bucket{le=\"0.01\"} 0\n"
                           "lat_seconds_bucket{le=\"0.025\"} 0\n"
                           "lat_seconds_bucket{le=\"0.05\"} 0\n"
                           "lat_seconds_bucket{le=\"0.1\"} 0\n"
                           "lat_seconds_bucket{le=\"0.25\"} 0\n"
                           "lat_seconds_bucket{le=\"0.5\"} 0\n"
                           "lat_seconds_bucket{le=\"1\"} 0\n"
                           "lat_seconds_bucket{le=\"2.5\"} 0\n"
                           "lat_seconds_bucket{le=\"5\"} 0\n"
                           "lat_seconds_bucket{le=\"10\"} 1\n"
                           "lat_seconds_bucket{le=\"+Inf\"} 1\n"
                           "lat_seconds_sum 10\n"
                           "lat_seconds_count 1\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.001\"} 1\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.0025\"} 1\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.005\"} 2\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.01\"} 2\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.025\"} 2\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.05\"} 2\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.25\"} 2\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"0.5\"} 3\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"1\"} 4\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"2.5\"} 4\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"5\"} 4\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"10\"} 4\n"
                           "lat_seconds_bucket{route=\"/a\",le=\"+Inf\"} 5\n"
                           "lat_seconds_sum{route=\"/a\"} 33.2548828125\n"
                           "lat_seconds_count{route=\"/a\"} 5\n");
    free(text);

    /* Each bound is inclusive, and NaN is refused. */
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/b", NULL}, 0.001);
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/b", NULL}, 0.0025);
    ng_metrics_observe(m, "lat_seconds", (const char *[]){"route", "/b", NULL}, NAN);
    text = render(m);
    assert_true(sample_value(text, "lat_seconds_bucket{route=\"/b\",le=\"0.001\"}") == 1);
    assert_true(sample_value(text, "lat_seconds_bucket{route=\"/b\",le=\"0.0025\"}") == 2);
    assert_true(sample_value(text, "lat_seconds_count{route=\"/b\"}") == 2);
    assert_true(sample_value(text, "ng_metrics_errors_total") == 1);
    free(text);
    ng_metrics_free(m);
}

static void
test_counter_never_negative(void **state)
{
    ng_metrics *m;
    char *text;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "c_total", NG_METRIC_COUNTER, "c"), NG_OK);
    assert_int_equal(ng_metrics_define(m, "g", NG_METRIC_GAUGE, "g"), NG_OK);
    assert_int_equal(ng_metrics_define(m, "h", NG_METRIC_HISTOGRAM, "h"), NG_OK);
    ng_metrics_add(m, "c_total", NULL, 5);
    ng_metrics_add(m, "c_total", NULL, -1);
    ng_metrics_add(m, "c_total", NULL, -0.0001);
    ng_metrics_add(m, "c_total", NULL, NAN);
    ng_metrics_add(m, "c_total", NULL, INFINITY);
    ng_metrics_add(m, "c_total", NULL, -INFINITY);
    ng_metrics_add(m, "c_total", NULL, 0);
    /* Calls of the wrong kind, and unknown names. */
    ng_metrics_set(m, "c_total", NULL, 1);
    ng_metrics_observe(m, "c_total", NULL, 1);
    ng_metrics_observe(m, "g", NULL, 1);
    ng_metrics_add(m, "h", NULL, 1);
    ng_metrics_set(m, "h", NULL, 1);
    ng_metrics_add(m, "nope", NULL, 1);
    ng_metrics_add(m, NULL, NULL, 1);
    ng_metrics_set(m, "", NULL, 1);
    ng_metrics_observe(m, "C_TOTAL", NULL, 1);
    /* A gauge goes both ways, and set replaces. */
    ng_metrics_add(m, "g", NULL, 3);
    ng_metrics_add(m, "g", NULL, -5);
    ng_metrics_add(m, "g", (const char *[]){"k", "v", NULL}, -1);
    ng_metrics_set(m, "g", (const char *[]){"k", "v", NULL}, 7);
    ng_metrics_add(m, "g", (const char *[]){"k", "v", NULL}, 0.5);
    /* A NULL registry takes anything. */
    ng_metrics_add(NULL, "c_total", NULL, 1);
    ng_metrics_set(NULL, "g", NULL, 1);
    ng_metrics_observe(NULL, "h", NULL, 1);
    ng_metrics_free(NULL);

    text = render(m);
    assert_true(sample_value(text, "c_total") == 5);
    assert_true(sample_value(text, "g") == -2);
    assert_true(sample_value(text, "g{k=\"v\"}") == 7.5);
    assert_true(sample_value(text, "ng_metrics_errors_total") == 14);
    /* Refused calls create no series. */
    assert_int_equal(count_prefix(text, "h_"), 0);
    free(text);
    ng_metrics_free(m);
}

static void
test_define_rules(void **state)
{
    char long_name[NG_METRICS_MAX_NAME + 2];
    ng_metrics *m;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "ok:name_1", NG_METRIC_COUNTER, ""), NG_OK);
    assert_int_equal(ng_metrics_define(m, "_x", NG_METRIC_GAUGE, "x"), NG_OK);
    assert_int_equal(ng_metrics_define(m, "ok:name_1", NG_METRIC_GAUGE, "again"), NG_ERR_EXISTS);
    assert_int_equal(ng_metrics_define(m, "ng_metrics_errors_total", NG_METRIC_COUNTER, "mine"), NG_ERR_EXISTS);
    assert_int_equal(ng_metrics_define(m, "", NG_METRIC_COUNTER, "x"), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_metrics_define(m, "1abc", NG_METRIC_COUNTER, "x"), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_metrics_define(m, "a-b", NG_METRIC_COUNTER, "x"), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_metrics_define(m, "a b", NG_METRIC_COUNTER, "x"), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_metrics_define(m, "ok", (ng_metric_type)3, "x"), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_metrics_define(m, "ok", NG_METRIC_GAUGE, "bad \xff"), NG_ERR_INVALID_ARG);
    memset(long_name, 'a', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    assert_int_equal(ng_metrics_define(m, long_name, NG_METRIC_COUNTER, "x"), NG_ERR_INVALID_ARG);
    long_name[NG_METRICS_MAX_NAME] = '\0';
    assert_int_equal(ng_metrics_define(m, long_name, NG_METRIC_COUNTER, "x"), NG_OK);
    ng_metrics_free(m);
}

static void
test_series_bound(void **state)
{
    ng_metrics *m;
    char id[16], *text;
    int i;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "by_id_total", NG_METRIC_COUNTER, "Fed from request data."), NG_OK);
    assert_int_equal(ng_metrics_define(m, "other_total", NG_METRIC_COUNTER, "Another family."), NG_OK);
    for (i = 0; i < NG_METRICS_MAX_SERIES + 100; i++) {
        /* Not in sorted order, so that series are inserted in the middle. */
        snprintf(id, sizeof id, "%d", (i * 7919) % (NG_METRICS_MAX_SERIES + 100));
        ng_metrics_add(m, "by_id_total", (const char *[]){"id", id, NULL}, 1);
    }
    text = render(m);
    assert_int_equal(count_prefix(text, "by_id_total{"), NG_METRICS_MAX_SERIES);
    assert_true(sample_value(text, "ng_metrics_errors_total") == 100);
    free(text);

    /* Series that exist still count; the bound is per family. */
    ng_metrics_add(m, "by_id_total", (const char *[]){"id", "0", NULL}, 1);
    ng_metrics_add(m, "other_total", (const char *[]){"id", "0", NULL}, 1);
    ng_metrics_add(m, "by_id_total", (const char *[]){"id", "new", NULL}, 1);
    text = render(m);
    assert_true(sample_value(text, "by_id_total{id=\"0\"}") == 2);
    assert_true(sample_value(text, "other_total{id=\"0\"}") == 1);
    assert_true(isnan(sample_value(text, "by_id_total{id=\"new\"}")));
    assert_true(sample_value(text, "ng_metrics_errors_total") == 101);
    free(text);
    ng_metrics_free(m);
}

struct worker {
    ng_metrics *m;
    int id;
};

static void *
worker(void *arg)
{
    const struct worker *w = arg;
    char id[16];
    int i;

    snprintf(id, sizeof id, "%d", w->id);
    for (i = 0; i < THREAD_ADDS; i++) {
        ng_metrics_add(w->m, "hits_total", (const char *[]){"route", "/shared", NULL}, 1);
        if (i % 10 == 0) {
            ng_metrics_add(w->m, "hits_total", (const char *[]){"route", "/own", "thread", id, NULL}, 1);
            ng_metrics_add(w->m, "inflight", NULL, 1);
            ng_metrics_observe(w->m, "work_seconds", NULL, 0.25);
            ng_metrics_add(w->m, "inflight", NULL, -1);
        }
    }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[N_THREADS];
    struct worker w[N_THREADS];
    ng_metrics *m;
    char series[64], *text;
    int i, r;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "hits_total", NG_METRIC_COUNTER, "Hits."), NG_OK);
    assert_int_equal(ng_metrics_define(m, "inflight", NG_METRIC_GAUGE, "In flight."), NG_OK);
    assert_int_equal(ng_metrics_define(m, "work_seconds", NG_METRIC_HISTOGRAM, "Work."), NG_OK);
    for (i = 0; i < N_THREADS; i++) {
        w[i].m = m;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    /* Scrapes while the counters move. */
    for (r = 0; r < 20; r++) {
        text = render(m);
        assert_non_null(strstr(text, "# TYPE hits_total counter\n"));
        free(text);
    }
    for (i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);

    text = render(m);
    assert_true(sample_value(text, "hits_total{route=\"/shared\"}") == (double)N_THREADS * THREAD_ADDS);
    for (i = 0; i < N_THREADS; i++) {
        snprintf(series, sizeof series, "hits_total{route=\"/own\",thread=\"%d\"}", i);
        assert_true(sample_value(text, series) == THREAD_ADDS / 10);
    }
    assert_true(sample_value(text, "inflight") == 0);
    assert_true(sample_value(text, "work_seconds_count") == (double)N_THREADS * THREAD_ADDS / 10);
    assert_true(sample_value(text, "work_seconds_bucket{le=\"0.1\"}") == 0);
    assert_true(sample_value(text, "work_seconds_bucket{le=\"0.25\"}") == (double)N_THREADS * THREAD_ADDS / 10);
    assert_true(sample_value(text, "work_seconds_sum") == 0.25 * N_THREADS * THREAD_ADDS / 10);
    assert_true(sample_value(text, "ng_metrics_errors_total") == 0);
    free(text);
    ng_metrics_free(m);
}

/* A metric or label name at p; its length, 0 if there is none. */
static size_t
name_len(const char *p, int metric)
{
    size_t n = 0;

    while ((p[n] >= 'a' && p[n] <= 'z') || (p[n] >= 'A' && p[n] <= 'Z') || p[n] == '_' || (metric && p[n] == ':') ||
           (n > 0 && p[n] >= '0' && p[n] <= '9'))
        n++;
    return n;
}

/* Whether a sample named name (len bytes) belongs to family of type. */
static int
belongs(const char *name, size_t len, const char *family, const char *type)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t flen = strlen(family), i;

    if (len == flen && strncmp(name, family, flen) == 0)
        return strcmp(type, "histogram") != 0;
    if (strcmp(type, "histogram") != 0 || len <= flen || strncmp(name, family, flen) != 0)
        return 0;
    for (i = 0; i < 3; i++)
        if (len - flen == strlen(suffixes[i]) && strncmp(name + flen, suffixes[i], len - flen) == 0)
            return 1;
    return 0;
}

/*
 * Reads text as the text exposition format, line by line: # HELP and
 * # TYPE for each family, then samples `name{label="value",...} value`
 * of that family only. Fails the test at the first line that does not
 * parse; returns how many samples there were.
 */
static size_t
check_format(const char *text)
{
    char family[NG_METRICS_MAX_NAME + 1] = "", type[16] = "";
    const char *p = text, *name, *end;
    size_t n, samples = 0;
    int le;

    while (*p != '\0') {
        end = strchr(p, '\n');
        assert_non_null(end); /* every line ends with a newline */
        if (strncmp(p, "# HELP ", 7) == 0) {
            p += 7;
            n = name_len(p, 1);
            assert_true(n > 0 && n <= NG_METRICS_MAX_NAME && p[n] == ' ');
            memcpy(family, p, n);
            family[n] = '\0';
            for (p += n + 1; p < end; p++) {
                if (*p == '\\') {
                    assert_true(p[1] == '\\' || p[1] == 'n');
                    p++;
                }
            }
            type[0] = '\0';
        } else if (strncmp(p, "# TYPE ", 7) == 0) {
            p += 7;
            n = strlen(family);
            assert_true(n > 0 && strncmp(p, family, n) == 0 && p[n] == ' ');
            p += n + 1;
            assert_true((size_t)(end - p) < sizeof type);
            memcpy(type, p, (size_t)(end - p));
            type[end - p] = '\0';
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 || strcmp(type, "histogram") == 0);
        } else {
            assert_true(p[0] != '#' && type[0] != '\0');
            name = p;
            n = name_len(p, 1);
            assert_true(n > 0);
            assert_true(belongs(name, n, family, type));
            p += n;
            le = 0;
            if (*p == '{') {
                do {
                    p++;
                    n = name_len(p, 0);
                    assert_true(n > 0 && p[n] == '=' && p[n + 1] == '"');
                    le = n == 2 && strncmp(p, "le", 2) == 0;
                    for (p += n + 2; *p != '"'; p++) {
                        assert_true(p < end);
                        if (*p == '\\') {
                            assert_true(p[1] == '\\' || p[1] == '"' || p[1] == 'n');
                            p++;
                        }
                    }
                    p++;
                } while (*p == ',');
                assert_int_equal(*p, '}');
                p++;
            }
            /* A bucket's last label is le. */
            assert_int_equal(le, strncmp(name + strlen(family), "_bucket", 7) == 0 && strcmp(type, "histogram") == 0);
            assert_int_equal(*p, ' ');
            p++;
            if (strncmp(p, "+Inf\n", 5) != 0 && strncmp(p, "-Inf\n", 5) != 0 && strncmp(p, "NaN\n", 4) != 0) {
                char *num_end;
                assert_true(*p != '\n' && *p != ' ');
                (void)strtod(p, &num_end);
                assert_ptr_equal(num_end, end);
            }
            samples++;
        }
        p = end + 1;
    }
    return samples;
}

static void
test_render_parses(void **state)
{
    ng_metrics *m;
    char *text;
    int i;

    (void)state;
    assert_int_equal(ng_metrics_new(&m), NG_OK);
    assert_int_equal(ng_metrics_define(m, "ng_http_requests_total", NG_METRIC_COUNTER, "Requests \\ by\nroute."),
                     NG_OK);
    assert_int_equal(ng_metrics_define(m, "ng_http_request_seconds", NG_METRIC_HISTOGRAM, "Latency."), NG_OK);
    assert_int_equal(ng_metrics_define(m, "ng:store_up", NG_METRIC_GAUGE, "Store."), NG_OK);
    assert_int_equal(ng_metrics_define(m, "empty_total", NG_METRIC_COUNTER, "No series."), NG_OK);
    for (i = 0; i < 50; i++) {
        char status[16];
        snprintf(status, sizeof status, "%d", 200 + i);
        ng_metrics_add(m, "ng_http_requests_total",
                       (const char *[]){"route", i % 2 ? "/a \"b\"\n" : "/c\\d", "status", status, NULL}, i);
        ng_metrics_observe(m, "ng_http_request_seconds", (const char *[]){"route", i % 3 ? "/x" : "/y", NULL},
                           i * 0.013);
    }
    ng_metrics_observe(m, "ng_http_request_seconds", NULL, 1e-9);
    ng_metrics_set(m, "ng:store_up", NULL, 1);
    ng_metrics_set(m, "ng:store_up", (const char *[]){"kind", "inf", NULL}, INFINITY);
    ng_metrics_set(m, "ng:store_up", (const char *[]){"kind", "nan", NULL}, NAN);
    ng_metrics_set(m, "ng:store_up", (const char *[]){"kind", "tiny", NULL}, -1e-300);
    ng_metrics_add(m, "unknown", NULL, 1);
    text = render(m);
    /* errors 1 + requests 50 + 3 histogram series of 16 lines + 4 gauges */
    assert_int_equal(check_format(text), 1 + 50 + 3 * 16 + 4);
    free(text);
    ng_metrics_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_render_exact),
        cmocka_unit_test(test_values_and_help_escaped),
        cmocka_unit_test(test_label_rules),
        cmocka_unit_test(test_histogram),
        cmocka_unit_test(test_counter_never_negative),
        cmocka_unit_test(test_define_rules),
        cmocka_unit_test(test_series_bound),
        cmocka_unit_test(test_threads),
        cmocka_unit_test(test_render_parses),
    };

    return cmocka_run_group_tests_name("metrics", tests, NULL, NULL);
}

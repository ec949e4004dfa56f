/*
 * ng_metrics.h: counters, gauges and histograms, rendered in the Prometheus
 * text exposition format (version 0.0.4) for GET /metrics.
 *
 * A family (a metric name with its help text and type) is defined once;
 * its series are created on first use, one per label set. Output order is
 * stable: families in the order they were defined, and within a family the
 * series sorted by their label text. Labels are sorted by name before use,
 * so the order in which a caller lists them does not matter.
 *
 * Updates return nothing and never fail loudly: a call that cannot be
 * honoured (unknown family, wrong type for the call, a
 * negative counter increment, a bad label, a family already at
 * NG_METRICS_MAX_SERIES) changes nothing except the counter
 * ng_metrics_errors_total, which every ng_metrics defines first and always
 * renders. The series bound keeps a label fed from request data from
 * exhausting memory; even so, label values should come from a small fixed
 * set (a route's pattern, never the request's path).
 *
 * THREAD SAFETY: one ng_metrics may be shared by many threads; one mutex
 * serializes all calls.
 */
#ifndef NG_METRICS_H
#define NG_METRICS_H

#include <stddef.h>

#include "ng_error.h"

enum {
    NG_METRICS_MAX_SERIES = 10000,    /* label sets per family */
    NG_METRICS_MAX_LABELS = 8,        /* name/value pairs per series */
    NG_METRICS_MAX_LABEL_TEXT = 1024, /* bytes of a series' escaped label text, name="value",... */
    NG_METRICS_MAX_NAME = 128,        /* bytes of a family name */
};

typedef enum ng_metric_type {
    NG_METRIC_COUNTER,
    NG_METRIC_GAUGE,
    NG_METRIC_HISTOGRAM,
} ng_metric_type;

typedef struct ng_metrics ng_metrics;

/* An empty registry but for ng_metrics_errors_total. NG_ERR_NOMEM. */
NG_MUST_CHECK ng_err ng_metrics_new(ng_metrics **out) NG_NONNULL(1);

/* NULL is a no-op. */
void ng_metrics_free(ng_metrics *m);

/*
 * Defines a family. name matches [a-zA-Z_:][a-zA-Z0-9_:]* (at most
 * NG_METRICS_MAX_NAME bytes); help is one line of text (a backslash or
 * newline in it is escaped). A histogram has the buckets 0.001, 0.0025,
 * 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5 and 10 (seconds, for
 * latencies) plus +Inf. NG_ERR_INVALID_ARG for a bad name or type,
 * NG_ERR_EXISTS if name is already defined, NG_ERR_NOMEM.
 */
NG_MUST_CHECK ng_err ng_metrics_define(ng_metrics *m, const char *name, ng_metric_type type, const char *help)
    NG_NONNULL(1, 2, 4);

/*
 * labels is NULL (no labels) or a NULL-terminated array of name, value
 * pairs: (const char *[]){"route", "/healthz", "status", "200", NULL}.
 * Label names match [a-zA-Z_][a-zA-Z0-9_]* (at most NG_METRICS_MAX_NAME
 * bytes), do not start with "__", are not "le" (histograms use it) and do
 * not repeat; values are UTF-8. At most NG_METRICS_MAX_LABELS pairs, and
 * NG_METRICS_MAX_LABEL_TEXT bytes once escaped. m may be NULL (the call
 * does nothing).
 */

/* A counter grows by v (a negative or non-finite v is refused); a gauge moves by v (NaN is refused). */
void ng_metrics_add(ng_metrics *m, const char *name, const char *const *labels, double v);

/* A gauge becomes v. */
void ng_metrics_set(ng_metrics *m, const char *name, const char *const *labels, double v);

/* A histogram counts v in its bucket and adds it to its sum. NaN is refused. */
void ng_metrics_observe(ng_metrics *m, const char *name, const char *const *labels, double v);

/*
 * Renders every family: # HELP and # TYPE lines, then one line per series,
 * `name{label="value",...} value` (no braces without labels). A histogram
 * series gives cumulative name_bucket{...,le="..."} lines ending with
 * le="+Inf", then name_sum and name_count. Label values escape backslash,
 * '"' and newline. A family without series has only its two comment lines.
 * *out (malloc'd, NUL-terminated, freed by the caller) holds *len bytes.
 * NG_ERR_NOMEM.
 */
NG_MUST_CHECK ng_err ng_metrics_render(ng_metrics *m, char **out, size_t *len) NG_NONNULL(1, 2, 3);

#endif

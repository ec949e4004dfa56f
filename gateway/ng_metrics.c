#include "ng_metrics.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Latencies in seconds: 1 ms to 10 s spans a gateway request, from a health check to one near its timeout. */
static const double bounds[] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};

enum {
    N_BOUNDS = sizeof bounds / sizeof bounds[0],
    NUM_BYTES = 32, /* any double as %.17g, or a uint64_t */
    RENDER_START = 4096,
};

static const char errors_name[] = "ng_metrics_errors_total";
static const char errors_help[] =
    "Metric updates refused: unknown family, wrong type, bad value or labels, series bound.";

/* One label set of a family. Allocated with its buckets and label text in one block. */
struct series {
    const char *labels; /* escaped, sorted by name: a="1",b="2"; "" without labels */
    double value;       /* counter, gauge */
    double sum;         /* histogram */
    uint64_t count;     /* histogram: observations, which is also the +Inf bucket */
    uint64_t bucket[];  /* histogram: observations in (bounds[i-1], bounds[i]], not cumulative */
};

struct family {
    char *name;
    char *help;
    ng_metric_type type;
    struct series **series; /* sorted by labels (strcmp), so lookups and rendering need no other index */
    size_t len, cap;
};

enum op { OP_ADD, OP_SET, OP_OBSERVE };

struct ng_metrics {
    pthread_mutex_t lock; /* guards everything below */
    struct family *families;
    size_t len, cap;
    struct series *errors; /* the one series of ng_metrics_errors_total */
};

/* Whether s is well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF). */
static int
utf8_ok(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    unsigned char lo, hi;
    size_t n, i;

    while (*p != '\0') {
        lo = 0x80;
        hi = 0xbf;
        if (*p < 0x80) {
            p++;
            continue;
        }
        if (*p < 0xc2 || *p > 0xf4)
            return 0;
        n = *p < 0xe0 ? 2 : *p < 0xf0 ? 3 : 4;
        if (*p == 0xe0)
            lo = 0xa0;
        else if (*p == 0xed)
            hi = 0x9f;
        else if (*p == 0xf0)
            lo = 0x90;
        else if (*p == 0xf4)
            hi = 0x8f;
        if (p[1] < lo || p[1] > hi)
            return 0;
        /* The NUL fails each test, so nothing past the string is read. */
        for (i = 2; i < n; i++)
            if ((p[i] & 0xc0) != 0x80)
                return 0;
        p += n;
    }
    return 1;
}

static int
name_ok(const char *s)
{
    size_t i;

    for (i = 0; s[i] != '\0'; i++) {
        if (i == NG_METRICS_MAX_NAME)
            return 0;
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' || s[i] == ':' ||
              (i > 0 && s[i] >= '0' && s[i] <= '9')))
            return 0;
    }
    return i > 0;
}

/* Label names have no ':'; "__" is reserved to Prometheus, "le" to histograms. */
static int
label_name_ok(const char *s)
{
    size_t i;

    if (strncmp(s, "__", 2) == 0 || strcmp(s, "le") == 0)
        return 0;
    for (i = 0; s[i] != '\0'; i++) {
        if (i == NG_METRICS_MAX_NAME)
            return 0;
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || s[i] == '_' ||
              (i > 0 && s[i] >= '0' && s[i] <= '9')))
            return 0;
    }
    return i > 0;
}

/* Appends to out (cap bytes with its NUL); 0 if it does not fit. */
static int
append(char *out, size_t cap, size_t *len, const char *s, size_t n)
{
    if (n >= cap - *len)
        return 0;
    memcpy(out + *len, s, n);
    *len += n;
    out[*len] = '\0';
    return 1;
}

/*
 * The canonical text of a label set: pairs sorted by name, values escaped,
 * name="value" joined by commas. It is both the series' key and what is
 * rendered between the braces. 0 if the labels break a rule or the text
 * would pass NG_METRICS_MAX_LABEL_TEXT.
 */
static int
label_text(char out[NG_METRICS_MAX_LABEL_TEXT + 1], size_t *len, const char *const *labels)
{
    const char *const *pair[NG_METRICS_MAX_LABELS], *const *t;
    const size_t cap = NG_METRICS_MAX_LABEL_TEXT + 1;
    const char *v;
    size_t n = 0, i, j;

    *len = 0;
    out[0] = '\0';
    if (labels == NULL)
        return 1;
    for (; labels[0] != NULL; labels += 2) {
        if (n == NG_METRICS_MAX_LABELS || labels[1] == NULL || !label_name_ok(labels[0]) || !utf8_ok(labels[1]))
            return 0;
        pair[n++] = labels;
    }
    /* Insertion sort: a handful of pairs. */
    for (i = 1; i < n; i++) {
        t = pair[i];
        for (j = i; j > 0 && strcmp(pair[j - 1][0], t[0]) > 0; j--)
            pair[j] = pair[j - 1];
        pair[j] = t;
    }
    for (i = 0; i < n; i++) {
        if (i > 0 && strcmp(pair[i - 1][0], pair[i][0]) == 0)
            return 0;
        if ((i > 0 && !append(out, cap, len, ",", 1)) || !append(out, cap, len, pair[i][0], strlen(pair[i][0])) ||
            !append(out, cap, len, "=\"", 2))
            return 0;
        for (v = pair[i][1]; *v != '\0'; v++) {
            if (*v == '\\' || *v == '"') {
                if (!append(out, cap, len, "\\", 1) || !append(out, cap, len, v, 1))
                    return 0;
            } else if (*v == '\n') {
                if (!append(out, cap, len, "\\n", 2))
                    return 0;
            } else if (!append(out, cap, len, v, 1)) {
                return 0;
            }
        }
        if (!append(out, cap, len, "\"", 1))
            return 0;
    }
    return 1;
}

static struct family *
find_family(ng_metrics *m, const char *name)
{
    size_t i;

    for (i = 0; i < m->len; i++)
        if (strcmp(m->families[i].name, name) == 0)
            return &m->families[i];
    return NULL;
}

/* The series of f with label text labels, created if new; NULL at the series bound or out of memory. */
static struct series *
find_series(struct family *f, const char *labels, size_t len)
{
    size_t lo = 0, hi = f->len, mid, nb, cap;
    struct series *s, **grown;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(f->series[mid]->labels, labels);
        if (c == 0)
            return f->series[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (f->len == NG_METRICS_MAX_SERIES)
        return NULL;
    if (f->len == f->cap) {
        cap = f->cap == 0 ? 8 : 2 * f->cap;
        grown = realloc(f->series, cap * sizeof *grown);
        if (grown == NULL)
            return NULL;
        f->series = grown;
        f->cap = cap;
    }
    nb = f->type == NG_METRIC_HISTOGRAM ? N_BOUNDS : 0;
    s = calloc(1, sizeof *s + nb * sizeof s->bucket[0] + len + 1);
    if (s == NULL)
        return NULL;
    memcpy((char *)(s->bucket + nb), labels, len + 1);
    s->labels = (const char *)(s->bucket + nb);
    memmove(f->series + lo + 1, f->series + lo, (f->len - lo) * sizeof *f->series);
    f->series[lo] = s;
    f->len++;
    return s;
}

/* Defines a family; the caller holds the lock (or is ng_metrics_new). */
static ng_err
define(ng_metrics *m, const char *name, ng_metric_type type, const char *help)
{
    struct family *f, *grown;
    size_t cap;

    if (!name_ok(name) || (type != NG_METRIC_COUNTER && type != NG_METRIC_GAUGE && type != NG_METRIC_HISTOGRAM) ||
        !utf8_ok(help))
        return NG_ERR_INVALID_ARG;
    if (find_family(m, name) != NULL)
        return NG_ERR_EXISTS;
    if (m->len == m->cap) {
        cap = m->cap == 0 ? 8 : 2 * m->cap;
        grown = realloc(m->families, cap * sizeof *grown);
        if (grown == NULL)
            return NG_ERR_NOMEM;
        m->families = grown;
        m->cap = cap;
    }
    f = &m->families[m->len];
    memset(f, 0, sizeof *f);
    f->type = type;
    f->name = strdup(name);
    f->help = strdup(help);
    if (f->name == NULL || f->help == NULL) {
        free(f->name);
        free(f->help);
        return NG_ERR_NOMEM;
    }
    m->len++;
    return NG_OK;
}

ng_err
ng_metrics_new(ng_metrics **out)
{
    ng_metrics *m;
    ng_err err;

    *out = NULL;
    m = calloc(1, sizeof *m);
    if (m == NULL)
        return NG_ERR_NOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return NG_ERR_NOMEM;
    }
    err = define(m, errors_name, NG_METRIC_COUNTER, errors_help);
    if (err == NG_OK) {
        /* Created now, so that it renders (as 0) before anything goes wrong. */
        m->errors = find_series(&m->families[0], "", 0);
        if (m->errors == NULL)
            err = NG_ERR_NOMEM;
    }
    if (err) {
        ng_metrics_free(m);
        return err;
    }
    *out = m;
    return NG_OK;
}

void
ng_metrics_free(ng_metrics *m)
{
    size_t i, j;

    if (m == NULL)
        return;
    for (i = 0; i < m->len; i++) {
        for (j = 0; j < m->families[i].len; j++)
            free(m->families[i].series[j]);
        free(m->families[i].series);
        free(m->families[i].name);
        free(m->families[i].help);
    }
    free(m->families);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

ng_err
ng_metrics_define(ng_metrics *m, const char *name, ng_metric_type type, const char *help)
{
    ng_err err;

    pthread_mutex_lock(&m->lock);
    err = define(m, name, type, help);
    pthread_mutex_unlock(&m->lock);
    return err;
}

/* Whether op with v suits a family of this type. */
static int
op_ok(ng_metric_type type, enum op op, double v)
{
    switch (op) {
    case OP_ADD: return (type == NG_METRIC_COUNTER && isfinite(v) && v >= 0) || (type == NG_METRIC_GAUGE && !isnan(v));
    case OP_SET: return type == NG_METRIC_GAUGE;
    case OP_OBSERVE: return type == NG_METRIC_HISTOGRAM && !isnan(v);
    }
    return 0;
}

static void
update(ng_metrics *m, const char *name, const char *const *labels, double v, enum op op)
{
    char text[NG_METRICS_MAX_LABEL_TEXT + 1];
    struct family *f = NULL;
    struct series *s = NULL;
    size_t len, i;
    int ok;

    if (m == NULL)
        return;
    /* The label text needs no lock: build it before taking one. */
    ok = name != NULL && label_text(text, &len, labels);
    pthread_mutex_lock(&m->lock);
    if (ok)
        f = find_family(m, name);
    if (f != NULL && op_ok(f->type, op, v))
        s = find_series(f, text, len);
    if (s == NULL) {
        m->errors->value += 1;
    } else if (op == OP_ADD) {
        s->value += v;
    } else if (op == OP_SET) {
        s->value = v;
    } else {
        for (i = 0; i < N_BOUNDS && v > bounds[i]; i++)
            ;
        if (i < N_BOUNDS)
            s->bucket[i]++;
        s->count++;
        s->sum += v;
    }
    pthread_mutex_unlock(&m->lock);
}

void
ng_metrics_add(ng_metrics *m, const char *name, const char *const *labels, double v)
{
    update(m, name, labels, v, OP_ADD);
}

void
ng_metrics_set(ng_metrics *m, const char *name, const char *const *labels, double v)
{
    update(m, name, labels, v, OP_SET);
}

void
ng_metrics_observe(ng_metrics *m, const char *name, const char *const *labels, double v)
{
    update(m, name, labels, v, OP_OBSERVE);
}

/* The rendering buffer; nomem sticks once an allocation failed. */
struct buf {
    char *p;
    size_t len, cap;
    int nomem;
};

static void
put(struct buf *b, const char *s, size_t n)
{
    size_t cap;
    char *grown;

    if (b->nomem)
        return;
    if (n >= b->cap - b->len) {
        cap = b->cap;
        while (n >= cap - b->len)
            cap *= 2;
        grown = realloc(b->p, cap);
        if (grown == NULL) {
            b->nomem = 1;
            return;
        }
        b->p = grown;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void
put_str(struct buf *b, const char *s)
{
    put(b, s, strlen(s));
}

/*
 * A sample value the way Prometheus writes them: NaN, +Inf, -Inf, or the
 * shortest of %.15g and %.17g that reads back as the same double (1, 0.25,
 * 0.1 rather than 0.10000000000000001).
 */
static void
format_double(char out[NUM_BYTES], double v)
{
    if (isnan(v)) {
        snprintf(out, NUM_BYTES, "NaN");
    } else if (isinf(v)) {
        snprintf(out, NUM_BYTES, "%s", v > 0 ? "+Inf" : "-Inf");
    } else {
        snprintf(out, NUM_BYTES, "%.15g", v);
        if (strtod(out, NULL) != v)
            snprintf(out, NUM_BYTES, "%.17g", v);
    }
}

/* One sample line: name[suffix]{labels[,extra]} value. */
static void
sample(struct buf *b, const char *name, const char *suffix, const char *labels, const char *extra, const char *value)
{
    put_str(b, name);
    put_str(b, suffix);
    if (labels[0] != '\0' || extra != NULL) {
        put_str(b, "{");
        put_str(b, labels);
        if (labels[0] != '\0' && extra != NULL)
            put_str(b, ",");
        if (extra != NULL)
            put_str(b, extra);
        put_str(b, "}");
    }
    put_str(b, " ");
    put_str(b, value);
    put_str(b, "\n");
}

static void
render_histogram(struct buf *b, const struct family *f, const struct series *s)
{
    char num[NUM_BYTES], le[NUM_BYTES + 8];
    uint64_t cumulative = 0;
    size_t i;

    for (i = 0; i < N_BOUNDS; i++) {
        cumulative += s->bucket[i];
        format_double(num, bounds[i]);
        snprintf(le, sizeof le, "le=\"%s\"", num);
        snprintf(num, sizeof num, "%llu", (unsigned long long)cumulative);
        sample(b, f->name, "_bucket", s->labels, le, num);
    }
    snprintf(num, sizeof num, "%llu", (unsigned long long)s->count);
    sample(b, f->name, "_bucket", s->labels, "le=\"+Inf\"", num);
    format_double(num, s->sum);
    sample(b, f->name, "_sum", s->labels, NULL, num);
    snprintf(num, sizeof num, "%llu", (unsigned long long)s->count);
    sample(b, f->name, "_count", s->labels, NULL, num);
}

static void
render_family(struct buf *b, const struct family *f)
{
    static const char *const type_names[] = {"counter", "gauge", "histogram"};
    char num[NUM_BYTES];
    const char *h;
    size_t i;

    put_str(b, "# HELP ");
    put_str(b, f->name);
    put_str(b, " ");
    /* HELP text escapes only backslash and newline. */
    for (h = f->help; *h != '\0'; h++) {
        if (*h == '\\')
            put_str(b, "\\\\");
        else if (*h == '\n')
            put_str(b, "\\n");
        else
            put(b, h, 1);
    }
    put_str(b, "\n# TYPE ");
    put_str(b, f->name);
    put_str(b, " ");
    put_str(b, type_names[f->type]);
    put_str(b, "\n");
    for (i = 0; i < f->len; i++) {
        if (f->type == NG_METRIC_HISTOGRAM) {
            render_histogram(b, f, f->series[i]);
        } else {
            format_double(num, f->series[i]->value);
            sample(b, f->name, "", f->series[i]->labels, NULL, num);
        }
    }
}

ng_err
ng_metrics_render(ng_metrics *m, char **out, size_t *len)
{
    struct buf b = {NULL, 0, RENDER_START, 0};
    size_t i;

    *out = NULL;
    *len = 0;
    b.p = malloc(b.cap);
    if (b.p == NULL)
        return NG_ERR_NOMEM;
    b.p[0] = '\0';
    pthread_mutex_lock(&m->lock);
    for (i = 0; i < m->len; i++)
        render_family(&b, &m->families[i]);
    pthread_mutex_unlock(&m->lock);
    if (b.nomem) {
        free(b.p);
        return NG_ERR_NOMEM;
    }
    *out = b.p;
    *len = b.len;
    return NG_OK;
}

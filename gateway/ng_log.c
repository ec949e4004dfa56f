#include "ng_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "ng_config.h"

/* ng_cli_serve casts the configured level to an ng_log_level. */
_Static_assert(NG_LOG_DEBUG == (int)NG_CONFIG_LOG_DEBUG && NG_LOG_INFO == (int)NG_CONFIG_LOG_INFO &&
                   NG_LOG_WARN == (int)NG_CONFIG_LOG_WARN && NG_LOG_ERROR == (int)NG_CONFIG_LOG_ERROR,
               "ng_log_level must follow ng_config_log_level");

enum {
    /*
     * Escaped message and value bytes stop FIELD_LIMIT bytes into the line.
     * The rest always has room for what may follow unchecked: one key with
     * its punctuation, the truncation mark, a closing quote, the line's end.
     */
    TAIL_BYTES = 128,
    FIELD_LIMIT = NG_LOG_LINE_MAX - TAIL_BYTES,
    TS_BYTES = 96, /* 24 bytes, but room for whatever ints gmtime_r gives */
};

_Static_assert(TAIL_BYTES >= 4 + NG_LOG_KEY_MAX + 3 + 16 + 2, "the tail must hold a key, the mark and the end");

struct ng_log {
    int fd;
    ng_log_level min;
    int json;
};

/* A line being built. The buffer lives on the logging thread's stack. */
struct line {
    size_t len;
    int full; /* a value was cut: the pairs after it are dropped */
    char buf[NG_LOG_LINE_MAX];
};

static const char *const level_names[] = {"debug", "info", "warn", "error"};
static const char mark[] = "\xe2\x80\xa6(truncated)"; /* U+2026 HORIZONTAL ELLIPSIS */
static const char replacement[] = "\xef\xbf\xbd";     /* U+FFFD REPLACEMENT CHARACTER */
static const char hex[] = "0123456789abcdef";

ng_err
ng_log_new(ng_log **out, int fd, ng_log_level min, int json)
{
    ng_log *l;

    *out = NULL;
    if (fd < 0 || (int)min < NG_LOG_DEBUG || (int)min > NG_LOG_ERROR)
        return NG_ERR_INVALID_ARG;
    l = calloc(1, sizeof *l);
    if (l == NULL)
        return NG_ERR_NOMEM;
    l->fd = fd;
    l->min = min;
    l->json = json != 0;
    *out = l;
    return NG_OK;
}

void
ng_log_free(ng_log *l)
{
    free(l);
}

int
ng_log_enabled(const ng_log *l, ng_log_level lvl)
{
    return l != NULL && (int)lvl >= (int)l->min && (int)lvl <= NG_LOG_ERROR;
}

/* Only for what the budget guarantees to fit (see TAIL_BYTES); the check is a backstop. */
static void
raw(struct line *ln, const char *s, size_t n)
{
    if (n > sizeof ln->buf - ln->len)
        return;
    memcpy(ln->buf + ln->len, s, n);
    ln->len += n;
}

static void
raw_str(struct line *ln, const char *s)
{
    raw(ln, s, strlen(s));
}

/* Appends n bytes of a message or value unless that would pass FIELD_LIMIT; 0 if not. */
static int
field_bytes(struct line *ln, const char *s, size_t n)
{
    if (ln->len + n > FIELD_LIMIT)
        return 0;
    memcpy(ln->buf + ln->len, s, n);
    ln->len += n;
    return 1;
}

/*
 * The length of the well-formed UTF-8 sequence at p (1-4), or 0 if p does
 * not start one: no overlong forms, surrogates or code points past
 * U+10FFFF. p is NUL-terminated, and the NUL fails every continuation test,
 * so nothing past it is read.
 */
static size_t
utf8_len(const unsigned char *p)
{
    unsigned char lo = 0x80, hi = 0xbf;

    if (p[0] < 0x80)
        return 1;
    if (p[0] < 0xc2)
        return 0;
    if (p[0] < 0xe0)
        return (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (p[0] < 0xf0) {
        if (p[0] == 0xe0)
            lo = 0xa0;
        else if (p[0] == 0xed)
            hi = 0x9f;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 ? 3 : 0;
    }
    if (p[0] < 0xf5) {
        if (p[0] == 0xf0)
            lo = 0x90;
        else if (p[0] == 0xf4)
            hi = 0x8f;
        return p[1] >= lo && p[1] <= hi && (p[2] & 0xc0) == 0x80 && (p[3] & 0xc0) == 0x80 ? 4 : 0;
    }
    return 0;
}

/*
 * Appends s escaped, as the inside of a JSON string or of a quoted text
 * value (the same escapes, except that text spells \n, \r and \t the short
 * way). 0 if it had to stop at FIELD_LIMIT; it stops between characters.
 */
static int
escaped(struct line *ln, const char *s, int json)
{
    const unsigned char *p = (const unsigned char *)s;
    char esc[6];
    const char *out;
    size_t n, step;

    while (*p != '\0') {
        out = esc;
        step = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\';
            esc[1] = (char)*p;
            n = 2;
        } else if (!json && (*p == '\n' || *p == '\r' || *p == '\t')) {
            esc[0] = '\\';
            esc[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
            n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            memcpy(esc, "\\u00", 4);
            esc[4] = hex[*p >> 4];
            esc[5] = hex[*p & 0xf];
            n = 6;
        } else if ((n = utf8_len(p)) != 0) {
            out = (const char *)p;
            step = n;
        } else {
            out = replacement;
            n = sizeof replacement - 1;
        }
        if (!field_bytes(ln, out, n))
            return 0;
        p += step;
    }
    return 1;
}

/* Whether a text value needs quotes to read back as one token. */
static int
needs_quotes(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;

    if (*p == '\0')
        return 1;
    for (; *p != '\0'; p++)
        if (*p <= ' ' || *p == 0x7f || *p == '=' || *p == '"' || *p == '\\')
            return 1;
    return 0;
}

/* The message or a value. Sets ln->full if it had to be cut. */
static void
value(struct line *ln, const char *v, int json)
{
    int quote;

    if (v == NULL) {
        if (!field_bytes(ln, "null", 4)) {
            raw(ln, "\"", 1);
            raw(ln, mark, sizeof mark - 1);
            raw(ln, "\"", 1);
            ln->full = 1;
        }
        return;
    }
    quote = json || needs_quotes(v);
    if (quote)
        raw(ln, "\"", 1);
    if (!escaped(ln, v, json)) {
        raw(ln, mark, sizeof mark - 1);
        ln->full = 1;
    }
    if (quote)
        raw(ln, "\"", 1);
}

static int
key_ok(const char *k)
{
    size_t i;

    for (i = 0; k[i] != '\0'; i++)
        if (i == NG_LOG_KEY_MAX || !((k[i] >= 'a' && k[i] <= 'z') || (k[i] >= '0' && k[i] <= '9') || k[i] == '_'))
            return 0;
    return i > 0;
}

/* UTC with milliseconds: 2026-11-24T04:47:01.123Z. */
static void
timestamp(char out[TS_BYTES])
{
    struct timespec ts;
    struct tm tm;

    clock_gettime(CLOCK_REALTIME, &ts);
    memset(&tm, 0, sizeof tm);
    gmtime_r(&ts.tv_sec, &tm);
    snprintf(out, TS_BYTES, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
             tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 1000000));
}

/* One write() for the whole line; a short write (a pipe, a signal) is completed, a failure dropped. */
static void
write_line(int fd, const char *buf, size_t len)
{
    ssize_t n;

    while (len > 0) {
        n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void
ng_log_eventv(ng_log *l, ng_log_level lvl, const char *msg, va_list ap)
{
    struct line ln;
    char ts[TS_BYTES];
    const char *k, *v;
    int saved_errno;

    if (!ng_log_enabled(l, lvl))
        return;
    /* Callers often log a failure and then look at errno. */
    saved_errno = errno;
    ln.len = 0;
    ln.full = 0;
    timestamp(ts);
    if (l->json) {
        raw_str(&ln, "{\"ts\":\"");
        raw_str(&ln, ts);
        raw_str(&ln, "\",\"level\":\"");
        raw_str(&ln, level_names[lvl]);
        raw_str(&ln, "\",\"msg\":");
    } else {
        raw_str(&ln, ts);
        raw_str(&ln, " ");
        raw_str(&ln, level_names[lvl]);
        raw_str(&ln, " ");
    }
    value(&ln, msg, l->json);
    while (!ln.full && (k = va_arg(ap, const char *)) != NULL) {
        v = va_arg(ap, const char *);
        if (!key_ok(k))
            k = "bad_key";
        raw_str(&ln, l->json ? ",\"" : " ");
        raw_str(&ln, k);
        raw_str(&ln, l->json ? "\":" : "=");
        value(&ln, v, l->json);
    }
    if (l->json)
        raw_str(&ln, "}");
    raw_str(&ln, "\n");
    write_line(l->fd, ln.buf, ln.len);
    errno = saved_errno;
}

void
ng_log_event(ng_log *l, ng_log_level lvl, const char *msg, ...)
{
    va_list ap;

    if (!ng_log_enabled(l, lvl))
        return;
    va_start(ap, msg);
    ng_log_eventv(l, lvl, msg, ap);
    va_end(ap);
}

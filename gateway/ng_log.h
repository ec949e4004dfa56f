/*
 * ng_log.h: structured log lines for the gateway, JSON or text.
 *
 * An event is a level, a message and key/value string pairs. JSON form, one
 * object per line, fields in the order given:
 *   {"ts":"2026-11-24T04:47:01.123Z","level":"info","msg":"request","route":"/healthz","status":"200"}
 * Text form (logfmt-like):
 *   2026-11-24T04:47:01.123Z info request route=/healthz status=200 note="two words"
 *
 * Every line is valid whatever the strings hold: invalid UTF-8 becomes
 * U+FFFD in both forms. In JSON, quotes and backslashes are escaped and
 * control characters (and DEL) become \u00XX. In text, the message and
 * each value are quoted if empty or holding a space, '=', '"', a backslash
 * or a control character; inside the quotes '"' and backslash are escaped
 * and control characters become \n, \r, \t or \u00XX. A NULL message or
 * value is written as null, bare in both forms.
 *
 * A line is at most NG_LOG_LINE_MAX bytes, newline included, and goes out in
 * one write(), so lines from concurrent threads never interleave (on a pipe
 * POSIX promises that only up to PIPE_BUF bytes; on Linux a regular file
 * gets the whole write). A value that does not fit ends in "…(truncated)"
 * and the pairs after it are dropped: a line is never split.
 *
 * Logging never fails a request: a failed write is dropped silently (EINTR
 * is retried; a short write is completed). A process that logs to a pipe
 * should ignore SIGPIPE, as a server does anyway.
 *
 * Keys must be 1-NG_LOG_KEY_MAX characters of [a-z0-9_]; any other key is
 * written as "bad_key", so a key can never break the line's syntax. Do not
 * use ts, level or msg as keys. Values are written as given: callers never
 * pass secrets (keys, tokens, passphrases, message bodies) to the log, and
 * nothing here filters them.
 *
 * THREAD SAFETY: one ng_log may be shared by many threads. It holds no lock:
 * after ng_log_new it is never modified, and each line is built on the
 * calling thread's stack.
 */
#ifndef NG_LOG_H
#define NG_LOG_H

#include <stdarg.h>

#include "ng_error.h"

#if defined(__GNUC__) || defined(__clang__)
#define NG_LOG_SENTINEL __attribute__((sentinel))
#else
#define NG_LOG_SENTINEL
#endif

enum {
    NG_LOG_LINE_MAX = 16 * 1024, /* bytes of one line, newline included */
    NG_LOG_KEY_MAX = 64,         /* bytes of one key */
};

/* The same order and values as ng_config_log_level, so the config's level casts to it. */
typedef enum ng_log_level {
    NG_LOG_DEBUG = 0,
    NG_LOG_INFO = 1,
    NG_LOG_WARN = 2,
    NG_LOG_ERROR = 3,
} ng_log_level;

typedef struct ng_log ng_log;

/*
 * A logger that writes to fd (not closed by ng_log_free; the caller keeps
 * it open while the logger is used) the events at min and above, as JSON
 * if json is nonzero, else as text. NG_ERR_INVALID_ARG for a negative fd or
 * a level out of range, NG_ERR_NOMEM.
 */
NG_MUST_CHECK ng_err ng_log_new(ng_log **out, int fd, ng_log_level min, int json) NG_NONNULL(1);

/* NULL is a no-op. */
void ng_log_free(ng_log *l);

/*
 * 1 if an event at lvl would be written. Cheap: check it before building
 * costly values. A NULL logger writes nothing (0).
 */
int ng_log_enabled(const ng_log *l, ng_log_level lvl);

/*
 * Writes one event: msg, then key/value string pairs, ending with a NULL
 * key: ng_log_event(l, NG_LOG_INFO, "request", "route", route, "status", status, NULL).
 * A NULL value is written as null. l may be NULL (nothing is written).
 */
void ng_log_event(ng_log *l, ng_log_level lvl, const char *msg, ...) NG_LOG_SENTINEL;

/* ng_log_event with the pairs in a va_list, for wrappers. ap is read, not ended. */
void ng_log_eventv(ng_log *l, ng_log_level lvl, const char *msg, va_list ap);

#endif

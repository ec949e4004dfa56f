/*
 * The gateway's log lines: JSON that always parses, with its fields in the
 * order given and every kind of string escaped; the text form; level
 * filtering; the 16 KiB cap that truncates a value instead of splitting
 * the line; and whole lines, never interleaved, from many threads at once.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <unistd.h>

#include "ng_log.h"

enum {
    N_THREADS = 8,
    THREAD_LINES = 2000,
    BIG_VALUE = 100 * 1024,
    PAD_BYTES = 512,
    TS_LEN = 24, /* 2026-11-24T04:47:01.123Z */
};

static const char mark[] = "\xe2\x80\xa6(truncated)";

/* An unlinked temporary file in append mode, as a log file would be opened. */
static int
temp_fd(void)
{
    char path[] = "/tmp/ng_test_log_XXXXXX";
    int fd = mkstemp(path);

    assert_true(fd >= 0);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(fcntl(fd, F_SETFL, O_APPEND), 0);
    return fd;
}

/* Everything written to fd so far, NUL-terminated (malloc'd). */
static char *
read_back(int fd, size_t *len)
{
    off_t size = lseek(fd, 0, SEEK_END);
    char *buf;
    ssize_t n;

    assert_true(size >= 0);
    buf = malloc((size_t)size + 1);
    assert_non_null(buf);
    n = pread(fd, buf, (size_t)size, 0);
    assert_int_equal(n, size);
    buf[size] = '\0';
    if (len != NULL)
        *len = (size_t)size;
    return buf;
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* One event logged to a fresh file; the whole output, which must be exactly one line. */
static char *
one_line(int json, ng_log_level min, void (*emit)(ng_log *l))
{
    ng_log *l;
    char *out;
    size_t len;
    int fd = temp_fd();

    assert_int_equal(ng_log_new(&l, fd, min, json), NG_OK);
    emit(l);
    ng_log_free(l);
    out = read_back(fd, &len);
    close(fd);
    assert_int_equal(count_lines(out), 1);
    assert_true(len > 0 && out[len - 1] == '\n');
    return out;
}

static json_t *
parse(const char *line)
{
    json_error_t e;
    json_t *j = json_loads(line, JSON_REJECT_DUPLICATES, &e);

    if (j == NULL)
        print_error("not JSON (%s): %.200s\n", e.text, line);
    assert_non_null(j);
    assert_true(json_is_object(j));
    return j;
}

static void
check_ts(const char *ts)
{
    static const char shape[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    size_t i;

    assert_int_equal(strlen(ts), TS_LEN);
    for (i = 0; i < TS_LEN; i++) {
        if (shape[i] == 'd')
            assert_true(ts[i] >= '0' && ts[i] <= '9');
        else
            assert_int_equal(ts[i], shape[i]);
    }
}

static const char *
str_field(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);

    assert_non_null(v);
    assert_true(json_is_string(v));
    return json_string_value(v);
}

static void
emit_fields(ng_log *l)
{
    ng_log_event(l, NG_LOG_INFO, "request", "route", "/healthz", "status", "200", "missing", NULL, "z_last", "1", NULL);
}

static void
test_json_fields_in_order(void **state)
{
    static const char *const order[] = {"ts", "level", "msg", "route", "status", "missing", "z_last"};
    char *line = one_line(1, NG_LOG_DEBUG, emit_fields);
    json_t *j = parse(line);
    const char *key;
    json_t *v;
    size_t i = 0;

    (void)state;
    check_ts(str_field(j, "ts"));
    assert_string_equal(str_field(j, "level"), "info");
    assert_string_equal(str_field(j, "msg"), "request");
    assert_string_equal(str_field(j, "route"), "/healthz");
    assert_string_equal(str_field(j, "status"), "200");
    assert_true(json_is_null(json_object_get(j, "missing")));
    /* jansson keeps insertion order, which is the order in the line. */
    json_object_foreach(j, key, v)
    {
        assert_true(i < sizeof order / sizeof order[0]);
        assert_string_equal(key, order[i]);
        i++;
    }
    assert_int_equal(i, sizeof order / sizeof order[0]);
    /* The exact bytes after the timestamp. */
    assert_string_equal(line + 7 + TS_LEN, "\",\"level\":\"info\",\"msg\":\"request\",\"route\":\"/healthz\","
                                           "\"status\":\"200\",\"missing\":null,\"z_last\":\"1\"}\n");
    json_decref(j);
    free(line);
}

static void
emit_escapes(ng_log *l)
{
    ng_log_event(l, NG_LOG_ERROR, "say \"hi\"\n", "quote", "a\"b\\c", "ctl", "tab\there\nnl\r\x01\x1f\x7f", "utf8",
                 "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", "bad",
                 "a\xff"
                 "b\xc0\x80"
                 "c\xed\xa0\x80"
                 "d\xe2\x82",
                 NULL);
}

static void
test_json_escaping(void **state)
{
    char *line = one_line(1, NG_LOG_DEBUG, emit_escapes);
    json_t *j = parse(line);
    const char *p;

    (void)state;
    assert_string_equal(str_field(j, "level"), "error");
    assert_string_equal(str_field(j, "msg"), "say \"hi\"\n");
    assert_string_equal(str_field(j, "quote"), "a\"b\\c");
    assert_string_equal(str_field(j, "ctl"), "tab\there\nnl\r\x01\x1f\x7f");
    assert_string_equal(str_field(j, "utf8"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
    /* Each byte that starts no well-formed sequence becomes one U+FFFD. */
    assert_string_equal(str_field(j, "bad"), "a\xef\xbf\xbd"
                                             "b\xef\xbf\xbd\xef\xbf\xbd"
                                             "c\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"
                                             "d\xef\xbf\xbd\xef\xbf\xbd");
    /* Control characters as \u00XX, and no raw control byte before the newline. */
    assert_non_null(strstr(line, "\"tab\\u0009here\\u000anl\\u000d\\u0001\\u001f\\u007f\""));
    assert_non_null(strstr(line, "\"a\\\"b\\\\c\""));
    for (p = line; p[1] != '\0'; p++)
        assert_true((unsigned char)*p >= 0x20 && *p != 0x7f);
    json_decref(j);
    free(line);
}

static void
emit_keys(ng_log *l)
{
    ng_log_event(l, NG_LOG_INFO, "keys", "Upper", "1", "", "2", "a-b", "3", "a\"b", "4", "ok_key_9", "5",
                 "k123456789012345678901234567890123456789012345678901234567890123", "6",  /* 64: fine */
                 "k1234567890123456789012345678901234567890123456789012345678901234", "7", /* 65: too long */
                 NULL);
}

static void
test_bad_keys(void **state)
{
    char *line = one_line(1, NG_LOG_DEBUG, emit_keys);
    json_error_t e;
    json_t *j = json_loads(line, 0, &e); /* duplicate bad_key: the last one wins */

    (void)state;
    assert_non_null(j);
    assert_string_equal(str_field(j, "ok_key_9"), "5");
    assert_string_equal(str_field(j, "k123456789012345678901234567890123456789012345678901234567890123"), "6");
    assert_string_equal(str_field(j, "bad_key"), "7");
    assert_int_equal(json_object_size(j), 3 + 3);
    assert_non_null(strstr(line, "\"msg\":\"keys\",\"bad_key\":\"1\",\"bad_key\":\"2\",\"bad_key\":\"3\","
                                 "\"bad_key\":\"4\",\"ok_key_9\":\"5\""));
    json_decref(j);
    free(line);
}

static void
emit_text(ng_log *l)
{
    ng_log_event(l, NG_LOG_WARN, "request", "route", "/healthz", "note", "two words", "q", "a\"b", "eq", "a=b", "empty",
                 "", "none", NULL, "nl", "x\ny\t\x01", "bs", "c:\\dir", "utf8", "\xc3\xa9t\xc3\xa9", "bad", "\xff",
                 NULL);
}

static void
emit_text_msg(ng_log *l)
{
    ng_log_event(l, NG_LOG_DEBUG, "started up", NULL);
}

static void
test_text_form(void **state)
{
    char *line = one_line(0, NG_LOG_DEBUG, emit_text);

    (void)state;
    line[TS_LEN] = '\0';
    check_ts(line);
    assert_string_equal(line + TS_LEN + 1, "warn request route=/healthz note=\"two words\" q=\"a\\\"b\" eq=\"a=b\" "
                                           "empty=\"\" none=null nl=\"x\\ny\\t\\u0001\" bs=\"c:\\\\dir\" "
                                           "utf8=\xc3\xa9t\xc3\xa9 bad=\xef\xbf\xbd\n");
    free(line);

    /* A message is quoted by the same rule as a value. */
    line = one_line(0, NG_LOG_DEBUG, emit_text_msg);
    assert_string_equal(line + TS_LEN, " debug \"started up\"\n");
    free(line);
}

static void
test_min_level(void **state)
{
    ng_log *l;
    char *out;
    int fd = temp_fd();

    (void)state;
    assert_int_equal(ng_log_new(&l, fd, NG_LOG_WARN, 1), NG_OK);
    assert_false(ng_log_enabled(l, NG_LOG_DEBUG));
    assert_false(ng_log_enabled(l, NG_LOG_INFO));
    assert_true(ng_log_enabled(l, NG_LOG_WARN));
    assert_true(ng_log_enabled(l, NG_LOG_ERROR));
    ng_log_event(l, NG_LOG_DEBUG, "d", NULL);
    ng_log_event(l, NG_LOG_INFO, "i", NULL);
    ng_log_event(l, NG_LOG_WARN, "w", NULL);
    ng_log_event(l, NG_LOG_ERROR, "e", NULL);
    ng_log_free(l);
    out = read_back(fd, NULL);
    assert_int_equal(count_lines(out), 2);
    assert_non_null(strstr(out, "\"level\":\"warn\",\"msg\":\"w\"}\n"));
    assert_non_null(strstr(out, "\"level\":\"error\",\"msg\":\"e\"}\n"));
    assert_null(strstr(out, "\"msg\":\"d\""));
    assert_null(strstr(out, "\"msg\":\"i\""));
    free(out);
    close(fd);

    /* A NULL logger takes events and writes nothing; bad arguments are refused. */
    assert_false(ng_log_enabled(NULL, NG_LOG_ERROR));
    ng_log_event(NULL, NG_LOG_ERROR, "nowhere", "k", "v", NULL);
    ng_log_free(NULL);
    l = (ng_log *)&fd;
    assert_int_equal(ng_log_new(&l, -1, NG_LOG_INFO, 1), NG_ERR_INVALID_ARG);
    assert_null(l);
    assert_int_equal(ng_log_new(&l, 2, (ng_log_level)4, 1), NG_ERR_INVALID_ARG);
    assert_int_equal(ng_log_new(&l, 2, (ng_log_level)-1, 0), NG_ERR_INVALID_ARG);
}

static char *g_big;     /* BIG_VALUE bytes of 'a' */
static char *g_big_mb;  /* two-byte characters, so a cut in the middle of one would show */
static char *g_big_ctl; /* control characters, six bytes each once escaped */
static char *g_8k;

static void
emit_big(ng_log *l)
{
    ng_log_event(l, NG_LOG_INFO, "big", "before", "kept", "body", g_big, "after", "dropped", NULL);
}

static void
emit_big_mb(ng_log *l)
{
    ng_log_event(l, NG_LOG_INFO, "big", "body", g_big_mb, NULL);
}

static void
emit_big_ctl(ng_log *l)
{
    ng_log_event(l, NG_LOG_INFO, "big", "body", g_big_ctl, NULL);
}

static void
emit_three_8k(ng_log *l)
{
    ng_log_event(l, NG_LOG_INFO, "big", "one", g_8k, "two", g_8k, "three", g_8k, "four", NULL, NULL);
}

static void
emit_big_msg(ng_log *l)
{
    ng_log_event(l, NG_LOG_INFO, g_big, "after", NULL, NULL);
}

/* A truncated line: valid JSON within the cap, the cut value ending with the mark. */
static json_t *
check_truncated(const char *line, const char *key)
{
    json_t *j = parse(line);
    const char *v = str_field(j, key);
    size_t vlen = strlen(v);

    assert_true(strlen(line) <= NG_LOG_LINE_MAX);
    assert_true(vlen > sizeof mark);
    assert_string_equal(v + vlen - (sizeof mark - 1), mark);
    return j;
}

static void
test_truncation(void **state)
{
    char *line;
    json_t *j;
    size_t i;

    (void)state;
    g_big = malloc(BIG_VALUE + 1);
    g_big_mb = malloc(BIG_VALUE + 1);
    g_big_ctl = malloc(BIG_VALUE + 1);
    g_8k = malloc(8 * 1024 + 1);
    assert_true(g_big != NULL && g_big_mb != NULL && g_big_ctl != NULL && g_8k != NULL);
    memset(g_big, 'a', BIG_VALUE);
    g_big[BIG_VALUE] = '\0';
    for (i = 0; i < BIG_VALUE; i += 2)
        memcpy(g_big_mb + i, "\xc3\xa9", 2);
    g_big_mb[BIG_VALUE] = '\0';
    memset(g_big_ctl, '\x01', BIG_VALUE);
    g_big_ctl[BIG_VALUE] = '\0';
    memset(g_8k, 'b', 8 * 1024);
    g_8k[8 * 1024] = '\0';

    line = one_line(1, NG_LOG_DEBUG, emit_big);
    j = check_truncated(line, "body");
    assert_string_equal(str_field(j, "before"), "kept");
    assert_null(json_object_get(j, "after")); /* after a cut value, the rest is dropped */
    /* Close to the cap: the value was cut, not cut short. */
    assert_true(strlen(line) > NG_LOG_LINE_MAX - 256);
    json_decref(j);
    free(line);

    /* Cut between characters: jansson refuses invalid UTF-8, so parsing is the check. */
    line = one_line(1, NG_LOG_DEBUG, emit_big_mb);
    json_decref(check_truncated(line, "body"));
    free(line);

    line = one_line(1, NG_LOG_DEBUG, emit_big_ctl);
    j = check_truncated(line, "body");
    assert_int_equal(str_field(j, "body")[0], '\x01');
    json_decref(j);
    free(line);

    /* Two values fit, the third is cut, the fourth (null) dropped. */
    line = one_line(1, NG_LOG_DEBUG, emit_three_8k);
    j = check_truncated(line, "two");
    assert_string_equal(str_field(j, "one"), g_8k);
    assert_null(json_object_get(j, "three"));
    assert_null(json_object_get(j, "four"));
    json_decref(j);
    free(line);

    line = one_line(1, NG_LOG_DEBUG, emit_big_msg);
    json_decref(check_truncated(line, "msg"));
    free(line);

    /* The text form has the same cap and the same mark. */
    line = one_line(0, NG_LOG_DEBUG, emit_big);
    assert_true(strlen(line) <= NG_LOG_LINE_MAX);
    assert_non_null(strstr(line, " before=kept body=aaaa"));
    assert_non_null(strstr(line, "a\xe2\x80\xa6(truncated)\n"));
    free(line);
    line = one_line(0, NG_LOG_DEBUG, emit_big_ctl);
    assert_true(strlen(line) <= NG_LOG_LINE_MAX);
    assert_non_null(strstr(line, "\\u0001\xe2\x80\xa6(truncated)\"\n"));
    free(line);

    free(g_big);
    free(g_big_mb);
    free(g_big_ctl);
    free(g_8k);
}

/* A write that fails is dropped without a word, and errno is what the caller left. */
static void
test_failed_write_dropped(void **state)
{
    ng_log *l;
    int fds[2];

    (void)state;
    assert_int_equal(pipe(fds), 0);
    close(fds[1]);
    /* fds[1] is closed: every write fails with EBADF. */
    assert_int_equal(ng_log_new(&l, fds[1], NG_LOG_DEBUG, 1), NG_OK);
    errno = ENOENT;
    ng_log_event(l, NG_LOG_ERROR, "lost", "k", "v", NULL);
    assert_int_equal(errno, ENOENT);
    ng_log_free(l);
    close(fds[0]);
}

struct worker {
    ng_log *log;
    int id;
};

static void *
worker(void *arg)
{
    const struct worker *w = arg;
    char thread[16], seq[16], pad[PAD_BYTES];
    int i;

    snprintf(thread, sizeof thread, "%d", w->id);
    for (i = 0; i < THREAD_LINES; i++) {
        /* Lines of different lengths, some well past a small write's size. */
        size_t n = (size_t)(i * 37 + w->id * 11) % (PAD_BYTES - 1);
        memset(pad, 'a' + w->id, n);
        pad[n] = '\0';
        snprintf(seq, sizeof seq, "%d", i);
        ng_log_event(w->log, NG_LOG_INFO, "tick", "thread", thread, "seq", seq, "pad", pad, "q", "\"\n\"", NULL);
    }
    return NULL;
}

static void
test_threads(void **state)
{
    pthread_t t[N_THREADS];
    struct worker w[N_THREADS];
    static unsigned char seen[N_THREADS][THREAD_LINES];
    char *out, *line, *next;
    size_t lines = 0;
    ng_log *l;
    json_t *j;
    int fd = temp_fd(), i, id, seq;

    (void)state;
    memset(seen, 0, sizeof seen);
    assert_int_equal(ng_log_new(&l, fd, NG_LOG_INFO, 1), NG_OK);
    for (i = 0; i < N_THREADS; i++) {
        w[i].log = l;
        w[i].id = i;
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (i = 0; i < N_THREADS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    ng_log_free(l);

    out = read_back(fd, NULL);
    close(fd);
    for (line = out; *line != '\0'; line = next + 1) {
        next = strchr(line, '\n');
        assert_non_null(next);
        *next = '\0';
        j = parse(line);
        assert_string_equal(str_field(j, "msg"), "tick");
        assert_string_equal(str_field(j, "q"), "\"\n\"");
        id = (int)strtol(str_field(j, "thread"), NULL, 10);
        seq = (int)strtol(str_field(j, "seq"), NULL, 10);
        assert_true(id >= 0 && id < N_THREADS && seq >= 0 && seq < THREAD_LINES);
        assert_int_equal(strlen(str_field(j, "pad")), (size_t)(seq * 37 + id * 11) % (PAD_BYTES - 1));
        assert_int_equal(seen[id][seq], 0);
        seen[id][seq] = 1;
        json_decref(j);
        lines++;
    }
    /* Every line arrived once: none lost, none split. */
    assert_int_equal(lines, N_THREADS * THREAD_LINES);
    free(out);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_fields_in_order),
        cmocka_unit_test(test_json_escaping),
        cmocka_unit_test(test_bad_keys),
        cmocka_unit_test(test_text_form),
        cmocka_unit_test(test_min_level),
        cmocka_unit_test(test_truncation),
        cmocka_unit_test(test_failed_write_dropped),
        cmocka_unit_test(test_threads),
    };

    return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}

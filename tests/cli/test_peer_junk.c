/*
 * A peer gateway that answers junk. Gateway b's tenant bob has alice as a
 * peer, but the outbox in alice's connection parameters (exported on
 * gateway a with `peer export --outbox`, so signed by alice's key) is a
 * fake peer gateway in this process: an HTTP server on 127.0.0.1 whose
 * /v1/outbox/<bob's key id> answers what the running test says. Gateway b
 * polls it as any peer gateway (gateway/ng_poller.c, fetch_gateway and
 * parse_listing).
 *
 * Each test sends one message from alice's backend through gateway a, takes
 * the parcel a sealed for bob from a's own peer API (GET /v1/outbox/<key
 * id> with alice's read token), has the fake serve one kind of junk (some
 * in several variants that go through the same branch), often with that
 * real parcel inside it, and then a valid listing with the real parcel
 * alone. Each time:
 * - b stays up and ready (/readyz), and its poller comes back (the fake
 *   sees it ask again);
 * - nothing of the junk is taken in or delivered: no parcel counted as
 *   polled or opened, an empty inbox, nothing at bob's backend, and never
 *   a replay later (a parcel taken from the junk would make the real
 *   listing's copy one);
 * - the refusal is logged or counted as the poller does it: a listing
 *   refused whole (parse_listing) fails the poll, logged once per failing
 *   streak as "polling a peer failed; backing off" with "does not parse",
 *   and the cursor stays (every request of the junk asks after the same
 *   cursor); a reply over the poller's cap fails the transfer (debug
 *   "peer outbox did not answer" with libcurl's error); a listing that
 *   parses has each parcel checked, refused ones counted in
 *   ng_parcels_refused_total{reason} and logged "parcel refused", and the
 *   cursor moves past them;
 * - the real parcel is then delivered exactly once, "polling a peer works
 *   again" is logged, and the cursor moves to the listing's "next".
 * There is no metric for a refused listing or a failed poll: the log line
 * is what says it. Before each case an empty listing is served until b has
 * read it twice, so that a case starts from a poller that is not failing,
 * at a known cursor, whatever a failed case before it left behind.
 *
 * Which branch takes which junk: parse_listing refuses whole (REFUSED)
 * tests 0-7; the reply cap (ng_curlbuf) fails the transfer (UNANSWERED)
 * for 8a and 8b; the listing parses and the parcel check refuses each
 * parcel (TAKEN) in 9.
 *
 * Gateway b has listen.max_body 16384 and poll.batch 4, so the reply cap
 * (fetch_gateway: limit * (max_body / 3 * 4 + 256) + 4096) is about 92 KB.
 * The tests run in order on the same gateways. NG_KEEP=1 keeps the
 * temporary directory (configurations, data, logs).
 */
#include "gateway_harness.h"

#include "ng_queue.h" /* NG_QUEUE_ID_BYTES: the longest cursor or id, NUL included */

enum {
    DELIVERY_WAIT_MS = 20000,
    /* b's poll.batch: the limit its poller asks for. */
    POLL_BATCH = 4,
    B_MAX_BODY = 16384,
    /* Long enough for a duplicate or a late delivery to show: polls come every 50-200 ms. */
    QUIET_MS = 1000,
    MAX_CASES = 16,
    FAKE_MAX_REQS = 8192,
    FAKE_TEXT = 160,
    /* What a huge answer would send in all: far over b's cap. */
    HUGE_TOTAL = 64 << 20,
};

static char dir[PATH_MAX / 2];
static gateway gw_a = {.name = "a"}, gw_b = {.name = "b"};
static tenant alice = {.slug = "alice", .g = &gw_a}, bob = {.slug = "bob", .g = &gw_b};
/* What alice's gateway seals to, and the path b reads it at. */
static char bob_kid[65], outbox_path[128];
/* "Authorization: Bearer <alice's read token>", as b sent it to the fake; a's peer API takes it. */
static char read_auth[FAKE_TEXT + 32];
/* Where alice's outbox on gateway a was read up to. */
static char a_cursor[FAKE_TEXT];
/* The messages of the tests, each to reach bob's backend once. */
static msg sent[MAX_CASES];
static size_t nsent;

/* ---- the fake peer gateway ---- */

enum fake_kind {
    FAKE_BODY,         /* body and len, with a Content-Length */
    FAKE_HUGE_LENGTH,  /* HUGE_TOTAL bytes announced in Content-Length */
    FAKE_HUGE_CHUNKED, /* HUGE_TOTAL bytes, chunked: no length said before */
};

enum fake_served {
    SERVED_ANSWER,    /* what the test set */
    SERVED_CAUGHT_UP, /* {"parcels": [], "next": caught_up}, to a request after caught_up */
    SERVED_OTHER,     /* not a GET of the outbox */
};

typedef struct fake_req {
    char path[FAKE_TEXT], after[FAKE_TEXT], limit[16], auth[FAKE_TEXT];
    int phase;
    int served;
} fake_req;

/*
 * A peer gateway's outbox as the test has it answer: every GET is answered
 * with the answer set last (fake_set), except that a request after the
 * cursor caught_up, when one is set, gets an empty listing that keeps it
 * there: the way a peer gateway answers a poller that has read everything.
 * Every request is recorded with the phase (the count of fake_set calls)
 * it was answered in.
 */
typedef struct fake_peer {
    struct MHD_Daemon *d;
    char url[96]; /* http://127.0.0.1:PORT/v1/outbox */
    pthread_mutex_t mu;
    int kind;
    uint8_t *body;
    size_t len;
    char caught_up[FAKE_TEXT];
    int has_caught_up;
    int phase;
    fake_req *reqs;
    int nreqs, dropped;
    uint64_t huge_most; /* the most bytes one huge answer produced before it ended */
    int huge_done;      /* huge answers ended, sent in full or given up by the reader */
} fake_peer;

struct huge_ctx {
    fake_peer *f;
    uint64_t produced;
};

static fake_peer fake;

/* The start of a huge answer; 'A's follow, as if one parcel's base64 never ended. */
static const char huge_head[] = "{\"parcels\": [{\"id\": \"huge\", \"parcel\": \"";

static ssize_t
huge_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct huge_ctx *h = cls;
    size_t n, i;

    if (pos >= HUGE_TOTAL)
        return MHD_CONTENT_READER_END_OF_STREAM;
    n = HUGE_TOTAL - pos < max ? (size_t)(HUGE_TOTAL - pos) : max;
    memset(buf, 'A', n);
    for (i = 0; pos + i < sizeof huge_head - 1 && i < n; i++)
        buf[i] = huge_head[pos + i];
    h->produced = pos + n;
    return (ssize_t)n;
}

static void
huge_free(void *cls)
{
    struct huge_ctx *h = cls;

    pthread_mutex_lock(&h->f->mu);
    if (h->produced > h->f->huge_most)
        h->f->huge_most = h->produced;
    h->f->huge_done++;
    pthread_mutex_unlock(&h->f->mu);
    free(h);
}

static enum MHD_Result
fake_answer(void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
            const char *upload, size_t *upload_size, void **state)
{
    static int seen;
    static char not_found[] = "{\"error\": {\"code\": \"not_found\", \"message\": \"not an outbox here\"}}";
    fake_peer *f = cls;
    const char *after = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "after");
    const char *limit = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "limit");
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    struct MHD_Response *r = NULL;
    struct huge_ctx *h;
    enum MHD_Result rc;
    fake_req *q = NULL;
    char listing[2 * FAKE_TEXT];
    int served, kind;

    (void)version;
    (void)upload;
    if (*state == NULL) { /* the headers; the answer comes with the next call */
        *state = &seen;
        return MHD_YES;
    }
    *upload_size = 0;
    pthread_mutex_lock(&f->mu);
    if (f->nreqs < FAKE_MAX_REQS) {
        q = &f->reqs[f->nreqs++];
        snprintf(q->path, sizeof q->path, "%s", url);
        snprintf(q->after, sizeof q->after, "%s", after != NULL ? after : "");
        snprintf(q->limit, sizeof q->limit, "%s", limit != NULL ? limit : "");
        snprintf(q->auth, sizeof q->auth, "%s", auth != NULL ? auth : "");
        q->phase = f->phase;
    } else {
        f->dropped++;
    }
    if (strcmp(method, "GET") != 0 || strncmp(url, "/v1/outbox/", 11) != 0) {
        served = SERVED_OTHER;
        r = MHD_create_response_from_buffer(strlen(not_found), not_found, MHD_RESPMEM_PERSISTENT);
    } else if (f->has_caught_up && strcmp(after != NULL ? after : "", f->caught_up) == 0) {
        served = SERVED_CAUGHT_UP;
        snprintf(listing, sizeof listing, "{\"parcels\": [], \"next\": \"%s\"}", f->caught_up);
        r = MHD_create_response_from_buffer(strlen(listing), listing, MHD_RESPMEM_MUST_COPY);
    } else {
        served = SERVED_ANSWER;
        kind = f->kind;
        if (kind == FAKE_BODY) {
            r = MHD_create_response_from_buffer(f->len, f->body, MHD_RESPMEM_MUST_COPY);
        } else if ((h = calloc(1, sizeof *h)) != NULL) {
            h->f = f;
            r = MHD_create_response_from_callback(kind == FAKE_HUGE_LENGTH ? (uint64_t)HUGE_TOTAL : MHD_SIZE_UNKNOWN,
                                                  32 * 1024, huge_read, h, huge_free);
            if (r == NULL)
                free(h);
        }
    }
    if (q != NULL)
        q->served = served;
    pthread_mutex_unlock(&f->mu);
    if (r == NULL)
        return MHD_NO;
    MHD_add_response_header(r, "Content-Type", "application/json");
    rc = MHD_queue_response(conn, served == SERVED_OTHER ? MHD_HTTP_NOT_FOUND : MHD_HTTP_OK, r);
    MHD_destroy_response(r);
    return rc;
}

static int
fake_start(fake_peer *f)
{
    int port;

    pthread_mutex_init(&f->mu, NULL);
    f->reqs = calloc(FAKE_MAX_REQS, sizeof *f->reqs);
    if (f->reqs == NULL)
        return -1;
    f->body = (uint8_t *)strdup("{\"parcels\": [], \"next\": \"\"}");
    if (f->body == NULL)
        return -1;
    f->len = strlen((const char *)f->body);
    f->d = loopback_daemon(fake_answer, NULL, f, &port);
    if (f->d == NULL)
        return -1;
    snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d/v1/outbox", port);
    return 0;
}

static void
fake_stop(fake_peer *f)
{
    if (f->d != NULL) {
        MHD_stop_daemon(f->d);
        f->d = NULL;
        pthread_mutex_destroy(&f->mu);
    }
    free(f->body);
    free(f->reqs);
    f->body = NULL;
    f->reqs = NULL;
}

/* From now on, kind (with body[0..len) for FAKE_BODY); an empty listing after caught_up if not NULL. The phase. */
static int
fake_set(fake_peer *f, int kind, const char *body, size_t len, const char *caught_up)
{
    uint8_t *copy = malloc(len > 0 ? len : 1);
    int phase;

    assert_non_null(copy);
    if (len > 0)
        memcpy(copy, body, len);
    pthread_mutex_lock(&f->mu);
    free(f->body);
    f->body = copy;
    f->len = len;
    f->kind = kind;
    f->has_caught_up = caught_up != NULL;
    snprintf(f->caught_up, sizeof f->caught_up, "%s", caught_up != NULL ? caught_up : "");
    phase = ++f->phase;
    pthread_mutex_unlock(&f->mu);
    return phase;
}

/* Requests answered `served` in phase. */
static int
fake_count(fake_peer *f, int phase, int served)
{
    int i, n = 0;

    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->nreqs; i++)
        n += f->reqs[i].phase == phase && f->reqs[i].served == served;
    pthread_mutex_unlock(&f->mu);
    return n;
}

/* The first request of phase answered `served`, copied to out; 0 if there is none. */
static int
fake_first(fake_peer *f, int phase, int served, fake_req *out)
{
    int i, found = 0;

    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->nreqs && !found; i++)
        if (f->reqs[i].phase == phase && f->reqs[i].served == served) {
            *out = f->reqs[i];
            found = 1;
        }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* The last request of phase answered `served`, copied to out; 0 if there is none. */
static int
fake_last(fake_peer *f, int phase, int served, fake_req *out)
{
    int i, found = 0;

    pthread_mutex_lock(&f->mu);
    for (i = f->nreqs - 1; i >= 0 && !found; i--)
        if (f->reqs[i].phase == phase && f->reqs[i].served == served) {
            *out = f->reqs[i];
            found = 1;
        }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* A request of phase answered `served` that was not after `after`, copied to out; 0 if there is none. */
static int
fake_other_after(fake_peer *f, int phase, int served, const char *after, fake_req *out)
{
    int i, found = 0;

    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->nreqs && !found; i++)
        if (f->reqs[i].phase == phase && f->reqs[i].served == served && strcmp(f->reqs[i].after, after) != 0) {
            *out = f->reqs[i];
            found = 1;
        }
    pthread_mutex_unlock(&f->mu);
    return found;
}

/* A request that is not b's poller reading bob's outbox with alice's read token and poll.batch; 0 if none. */
static int
fake_stray(fake_peer *f, fake_req *out)
{
    char limit[16];
    int i, found = 0;

    snprintf(limit, sizeof limit, "%d", POLL_BATCH);
    pthread_mutex_lock(&f->mu);
    for (i = 0; i < f->nreqs && !found; i++)
        if (f->reqs[i].served == SERVED_OTHER || strcmp(f->reqs[i].path, outbox_path) != 0 ||
            strcmp(f->reqs[i].limit, limit) != 0 ||
            strcmp(f->reqs[i].auth, read_auth + strlen("Authorization: ")) != 0) {
            *out = f->reqs[i];
            found = 1;
        }
    found |= f->dropped > 0;
    pthread_mutex_unlock(&f->mu);
    return found;
}

static void
fake_huge(fake_peer *f, int *done, uint64_t *most)
{
    pthread_mutex_lock(&f->mu);
    *done = f->huge_done;
    *most = f->huge_most;
    pthread_mutex_unlock(&f->mu);
}

/* Waits until phase has at least n requests answered `served`; fails after ms. */
static void
wait_served_at(int phase, int served, int n, long ms, int line)
{
    long t0 = now_ms();

    while (fake_count(&fake, phase, served) < n) {
        if (!alive(gw_b.pid))
            fail_msg("line %d: gateway b is gone; see %s", line, gw_b.log);
        if (now_ms() - t0 > ms)
            fail_msg("line %d: the fake peer answered %d requests %s in phase %d within %ld ms, expected %d", line,
                     fake_count(&fake, phase, served), served == SERVED_ANSWER ? "with the answer set" : "caught up",
                     phase, ms, n);
        sleep_ms(10);
    }
}

#define WAIT_SERVED(phase, served, n) wait_served_at((phase), (served), (n), DELIVERY_WAIT_MS, __LINE__)

/* ---- what gateway b says ---- */

/* What the tests follow on gateway b: its counters, and the lines of its log about alice's outbox. */
typedef struct counts {
    double polled, opened, malformed, auth, replayed;
    int failed, again, refused;
} counts;

static counts
counts_now(void)
{
    reply r = GW_GET(&gw_b, "/metrics");
    const char *m;
    counts c;

    EXPECT_STATUS(r, 200);
    m = text_of(r.body);
    c.polled = counter_of(m, "ng_parcels_polled_total");
    c.opened = counter_of(m, "ng_parcels_opened_total");
    c.malformed = counter_of(m, "ng_parcels_refused_total{reason=\"malformed\"}");
    c.auth = counter_of(m, "ng_parcels_refused_total{reason=\"auth\"}");
    c.replayed = counter_of(m, "ng_parcels_refused_total{reason=\"replayed\"}");
    c.failed = LOG_COUNT(&gw_b, "\"msg\":\"polling a peer failed; backing off\"", "\"peer\":\"alice\"");
    c.again = LOG_COUNT(&gw_b, "\"msg\":\"polling a peer works again\"", "\"peer\":\"alice\"");
    c.refused = LOG_COUNT(&gw_b, "\"msg\":\"parcel refused\"", "\"peer\":\"alice\"");
    return c;
}

/* Gateway b runs and answers /readyz. */
static void
expect_ready_at(int line)
{
    reply r;

    if (!alive(gw_b.pid))
        fail_msg("line %d: gateway b is gone; see %s", line, gw_b.log);
    r = GW_GET(&gw_b, "/readyz");
    if (r.status != 200)
        fail_msg("line %d: gateway b's /readyz answered %ld: %.300s", line, r.status, text_of(r.body));
}

#define EXPECT_READY() expect_ready_at(__LINE__)

/*
 * An empty listing that leaves b's cursor where it is, until b has read it
 * twice: b's poller is then not failing, whatever the test before left
 * behind, and nothing it does moves a counter. b's cursor, as it asked.
 */
static const char *
settle_at(int line)
{
    static const char empty[] = "{\"parcels\": [], \"next\": \"\"}";
    int phase = fake_set(&fake, FAKE_BODY, empty, strlen(empty), NULL);
    fake_req q;

    wait_served_at(phase, SERVED_ANSWER, 2, DELIVERY_WAIT_MS, line);
    assert_true(fake_last(&fake, phase, SERVED_ANSWER, &q));
    return textf("%s", q.after);
}

/* ---- the real parcel ---- */

/* A message from alice to bob through gateway a, and the parcel a sealed for it as a's peer API serves it. */
typedef struct real {
    msg *m;
    const char *id, *b64, *next; /* as a's listing gives them */
    const char *entry;           /* {"id", "parcel"} of the listing */
    const char *listing;         /* {"parcels": [entry], "next"}: a valid listing of the parcel alone */
    blob *bytes;                 /* the parcel */
} real;

static void
real_parcel(real *r, const char *subject)
{
    char path[320];
    const char *h[2] = {read_auth, NULL};
    json_t *list, *e;
    size_t len;
    reply rep;
    msg *m;

    assert_true(nsent < MAX_CASES);
    m = &sent[nsent++];
    memset(m, 0, sizeof *m);
    m->from = &alice;
    m->to = &bob;
    m->content_type = "text/plain; charset=utf-8";
    m->subject = subject;
    text_body(m, subject);
    send_message(m);
    /* On a's outbox when the 202 came; the listing after what was read before holds it alone. */
    snprintf(path, sizeof path, "/v1/outbox/%s?limit=%d%s%s", bob_kid, POLL_BATCH, a_cursor[0] ? "&after=" : "",
             a_cursor);
    rep = gw_http(&gw_a, "GET", path, h, NULL, 0);
    EXPECT_STATUS(rep, 200);
    list = json_object_get(rep.json, "parcels");
    if (json_array_size(list) != 1)
        fail_msg("a's outbox for bob after \"%s\": %.500s", a_cursor, text_of(rep.body));
    e = json_array_get(list, 0);
    r->m = m;
    r->id = jstr(e, "id");
    r->b64 = jstr(e, "parcel");
    r->next = jstr(rep.json, "next");
    assert_string_equal(r->next, r->id);
    snprintf(a_cursor, sizeof a_cursor, "%s", r->next);
    r->entry = textf("{\"id\": \"%s\", \"parcel\": \"%s\"}", r->id, r->b64);
    r->listing = textf("{\"parcels\": [%s], \"next\": \"%s\"}", r->entry, r->next);
    r->bytes = blob_new();
    blob_reserve(r->bytes, strlen(r->b64));
    assert_int_equal(sodium_base642bin(r->bytes->data, strlen(r->b64), r->b64, strlen(r->b64), NULL, &len, NULL,
                                       sodium_base64_VARIANT_ORIGINAL),
                     0);
    r->bytes->len = len;
    /* A header and Noise messages: enough bytes to cut in half (test_garbage_parcel). */
    assert_true(len > 100);
}

/* base64 of bytes, in a blob. */
static const char *
b64_of(const uint8_t *bytes, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_ORIGINAL);
    blob *b = blob_new();

    blob_reserve(b, cap);
    sodium_bin2base64((char *)b->data, cap, bytes, len, sodium_base64_VARIANT_ORIGINAL);
    b->len = strlen((const char *)b->data);
    return text_of(b);
}

/* ---- one case: junk, then the real parcel ---- */

/* How gateway b's poller meets a junk answer. */
typedef enum branch {
    REFUSED,    /* parse_listing refuses the listing whole: the poll fails with "does not parse" */
    UNANSWERED, /* the transfer fails (over the reply cap): the poll fails as if the peer did not answer */
    TAKEN,      /* the listing parses; each parcel is checked and refused, and the cursor moves past them */
} branch;

typedef struct junk {
    int kind;
    const char *body; /* FAKE_BODY: the bytes served */
    size_t len;
    /* UNANSWERED: the libcurl errors (curl_easy_strerror) b's debug line may give, NULL-terminated. */
    const char *errors[3];
} junk;

/* A body of text. */
#define TEXT(s) ((junk){FAKE_BODY, (s), strlen(s), {NULL}})

/* What a TAKEN junk answer does: its parcels, refused as malformed and as auth; the cursor it moves to. */
typedef struct taken {
    int parcels, malformed, auth;
    const char *next;
} taken;

/* Lines of b's debug log saying alice's outbox did not answer, with one of errors. */
static int
unanswered_count(const char *const *errors)
{
    int n = 0;
    size_t i;

    for (i = 0; errors[i] != NULL; i++)
        n += LOG_COUNT(&gw_b, "\"msg\":\"peer outbox did not answer\"", "\"peer\":\"alice\"",
                       textf("\"error\":\"%s\"", errors[i]));
    return n;
}

/* The huge answers ended so far, waiting until more than done0 did; the most one produced in *most. */
static int
wait_huge_done_at(int done0, uint64_t *most, int line)
{
    long t0 = now_ms();
    int done;

    for (;;) {
        fake_huge(&fake, &done, most);
        if (done > done0)
            return done;
        if (now_ms() - t0 > DELIVERY_WAIT_MS)
            fail_msg("line %d: no huge answer ended within %d ms", line, DELIVERY_WAIT_MS);
        sleep_ms(10);
    }
}

/* In run_case_at: a count is what it must be. */
#define EXPECT_COUNT(got, want)                                                                                        \
    do {                                                                                                               \
        if ((double)(got) != (double)(want))                                                                           \
            fail_msg("line %d: %s is %.0f, expected %s = %.0f", line, #got, (double)(got), #want, (double)(want));     \
    } while (0)

/*
 * The junk answers v[0..nv), one after the other, each until b's poller
 * has met it (and asked again), and then r's listing; checks after each
 * what the file's comment says, as branch br goes (tk: what a TAKEN
 * listing holds).
 */
static void
run_case_at(const real *r, const junk *v, size_t nv, branch br, const taken *tk, int line)
{
    const char *why = br == REFUSED
                          ? "\"error\":\"does not parse\""
                          : "\"error\":\"the peer's outbox or our store did not answer (debug log says which)\"";
    const char *failed = "\"msg\":\"polling a peer failed; backing off\"";
    const char *cursor = settle_at(line);
    counts c0 = counts_now(), c;
    int total = sink_total(&bob.sink), phase, done = 0,
        failed_why0 = LOG_COUNT(&gw_b, failed, "\"peer\":\"alice\"", why);
    uint64_t most = 0;
    fake_req q;
    long waiting, dead;
    size_t i;

    /* Once a listing parsed, the cursor is its "next", where the fake answers as caught up: one variant only. */
    assert_true(br != TAKEN || (tk != NULL && nv == 1 && strcmp(tk->next, cursor) != 0));
    fake_huge(&fake, &done, &most);
    for (i = 0; i < nv; i++) {
        int unanswered0 = br == UNANSWERED ? unanswered_count(v[i].errors) : 0;

        /* A listing that parses is served once: the poller asks after its "next" then, and is caught up. */
        phase = fake_set(&fake, v[i].kind, v[i].body, v[i].len, br == TAKEN ? tk->next : NULL);
        if (br == TAKEN) {
            wait_served_at(phase, SERVED_CAUGHT_UP, 1, DELIVERY_WAIT_MS, line);
            if (fake_count(&fake, phase, SERVED_ANSWER) != 1)
                fail_msg("line %d: junk %zu was read %d times; its listing parsed, so once", line, i,
                         fake_count(&fake, phase, SERVED_ANSWER));
        } else {
            /* Refused, and asked again after the backoff: the poller lives on. */
            wait_served_at(phase, SERVED_ANSWER, 2, DELIVERY_WAIT_MS, line);
        }
        /* Every read of the junk was after the cursor from before it: one refused leaves the cursor where it was. */
        if (fake_other_after(&fake, phase, SERVED_ANSWER, cursor, &q))
            fail_msg("line %d: junk %zu was asked for after \"%s\"; the cursor before it was \"%s\"", line, i, q.after,
                     cursor);
        if (br == UNANSWERED) {
            /* The first try had ended (and was logged) before the second was asked for. */
            if (unanswered_count(v[i].errors) < unanswered0 + 1)
                fail_msg("line %d: b's debug log does not say that huge answer %zu failed with %s", line, i,
                         v[i].errors[0]);
            /* And the reader let go of it far before its end: b keeps no more than its cap. */
            done = wait_huge_done_at(done, &most, line);
            print_message("huge answers: at most %llu of their %d bytes produced before b let go\n",
                          (unsigned long long)most, HUGE_TOTAL);
            if (most >= HUGE_TOTAL / 2)
                fail_msg("line %d: b read %llu bytes of a huge answer; its cap is about 92 KB", line,
                         (unsigned long long)most);
        }
        EXPECT_READY();
        if (sink_total(&bob.sink) != total)
            fail_msg("line %d: bob's backend got %d requests during junk %zu", line, sink_total(&bob.sink) - total, i);
    }

    /* Nothing of the junk taken in (a parcel the poller takes is counted before it asks again). */
    c = counts_now();
    queue_of(&bob, &waiting, &dead);
    if (waiting != 0 || dead != 0)
        fail_msg("line %d: bob's inbox holds %ld waiting, %ld dead after the junk", line, waiting, dead);
    EXPECT_COUNT(c.opened, c0.opened);
    EXPECT_COUNT(c.replayed, c0.replayed);
    EXPECT_COUNT(c.again, c0.again);
    /* And the refusal said as the poller says it. */
    if (br == TAKEN) {
        EXPECT_COUNT(c.failed, c0.failed);
        EXPECT_COUNT(c.polled, c0.polled + tk->parcels);
        if (c.malformed != c0.malformed + tk->malformed || c.auth != c0.auth + tk->auth)
            fail_msg("line %d: refused as malformed %.0f, auth %.0f; expected %d, %d", line, c.malformed - c0.malformed,
                     c.auth - c0.auth, tk->malformed, tk->auth);
        EXPECT_COUNT(c.refused, c0.refused + tk->malformed + tk->auth);
        cursor = tk->next;
    } else {
        /* Once per failing streak, whatever the number of variants and retries, with why it failed. */
        EXPECT_COUNT(c.failed, c0.failed + 1);
        EXPECT_COUNT(LOG_COUNT(&gw_b, failed, "\"peer\":\"alice\"", why), failed_why0 + 1);
        EXPECT_COUNT(c.polled, c0.polled);
        EXPECT_COUNT(c.malformed, c0.malformed);
        EXPECT_COUNT(c.auth, c0.auth);
        EXPECT_COUNT(c.refused, c0.refused);
    }

    /* Then the real parcel, alone in a valid listing: delivered once, and the cursor moves to its "next". */
    phase = fake_set(&fake, FAKE_BODY, r->listing, strlen(r->listing), r->next);
    WAIT_HITS(&bob.sink, r->m->id, 1, DELIVERY_WAIT_MS);
    wait_served_at(phase, SERVED_CAUGHT_UP, 1, DELIVERY_WAIT_MS, line);
    assert_true(fake_first(&fake, phase, SERVED_ANSWER, &q));
    if (strcmp(q.after, cursor) != 0)
        fail_msg("line %d: the real listing was asked after \"%s\", expected \"%s\"", line, q.after, cursor);
    EXPECT_READY();
    WAIT_QUEUE(&bob, 0, 0, DELIVERY_WAIT_MS);
    c = counts_now();
    EXPECT_COUNT(c.opened, c0.opened + 1);
    EXPECT_COUNT(c.polled, c0.polled + 1 + (br == TAKEN ? tk->parcels : 0));
    EXPECT_COUNT(c.replayed, c0.replayed);
    EXPECT_COUNT(c.failed, c0.failed + (br != TAKEN));
    EXPECT_COUNT(c.again, c0.again + (br != TAKEN));
    /* Once, answered 2xx, byte for byte and signed, as bob's backend must see it. */
    expect_once_at(r->m, line);
    EXPECT_COUNT(sink_total(&bob.sink), total + 1);
    if (fake_stray(&fake, &q))
        fail_msg("line %d: the fake peer got \"%s\" (limit \"%s\", \"%s\"); expected GETs of %s, limit %d, alice's "
                 "token",
                 line, q.path, q.limit, q.auth, outbox_path, POLL_BATCH);
}

#define RUN_CASE(r, v, br, tk) run_case_at((r), (v), sizeof(v) / sizeof((v)[0]), (br), (tk), __LINE__)

/* ---- setup ---- */

static void
write_junk_config(gateway *g, int not, const char *listen_more, const char *poll_more)
{
    /* Polling every 50-200 ms, so that a refusal is retried and a parcel crosses in well under a second. */
    gateway_config(g, dir, not, listen_more,
                   "\"delivery\": {\"allow_private\": [\"127.0.0.1\"], \"timeout_ms\": 2000},\n"
                   " \"poll\": {\"interval_ms\": 50, \"max_interval_ms\": 200%s},",
                   poll_more);
}

static int
group_setup(void **state)
{
    fake_req q;

    (void)state;
    tag_init();
    if (make_temp_dir(dir, sizeof dir, "ngpeerjunk") != 0 || fake_start(&fake) != 0)
        return -1;
    write_junk_config(&gw_a, 0, NULL, "");
    write_junk_config(&gw_b, gw_a.port, textf(", \"timeout_s\": 5, \"max_body\": %d", B_MAX_BODY),
                      textf(", \"batch\": %d", POLL_BATCH));
    if (two_gateways_init(&gw_a, &gw_b, (tenant *const[]){&alice, &bob}, 2) != 0)
        return -1;
    GCLI(&gw_a, "tenant", "create", "alice");
    GCLI(&gw_b, "tenant", "create", "bob");
    key_id_of(&gw_b, "bob", bob_kid);
    snprintf(outbox_path, sizeof outbox_path, "/v1/outbox/%s", bob_kid);
    /* Signed by alice's key, as any export: only the outbox is the fake's. */
    connect_tenants(&alice, fake.url, (tenant *const[]){&alice, &bob}, 2);
    start_gateway(&gw_a);
    /* b's debug lines say why a peer's outbox did not answer. */
    setenv("NOISEGATE_LOG_LEVEL", "debug", 1);
    start_gateway(&gw_b);
    unsetenv("NOISEGATE_LOG_LEVEL");
    /* b reads at once, from the start of alice's outbox, with her read token: a's peer API takes it too. */
    WAIT_SERVED(0, SERVED_ANSWER, 1);
    assert_true(fake_first(&fake, 0, SERVED_ANSWER, &q));
    assert_string_equal(q.path, outbox_path);
    assert_string_equal(q.after, "");
    assert_true(strncmp(q.auth, "Bearer ", 7) == 0 && is_lower_hex(q.auth + 7, 64));
    snprintf(read_auth, sizeof read_auth, "Authorization: %s", q.auth);
    return test_teardown(state);
}

static int
group_teardown(void **state)
{
    int rc;

    (void)state;
    rc = suite_teardown(dir, (gateway *const[]){&gw_a, &gw_b, NULL}, (tenant *const[]){&alice, &bob, NULL});
    fake_stop(&fake);
    return rc;
}

/* ==== listings parse_listing refuses whole: the poll fails with "does not parse", the cursor stays ==== */

/* 0. Not JSON at all: nothing, blanks, an HTML error page, JSON that is neither object nor array. */
static void
test_empty_body(void **state)
{
    real r;

    (void)state;
    real_parcel(&r, "after-empty");
    {
        const junk v[] = {TEXT(""), TEXT(" \r\n\t "), TEXT("<html><body>502 Bad Gateway</body></html>"), TEXT("null"),
                          TEXT("\"parcels\"")};

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/* 1. Malformed JSON: the real listing cut short, by its last byte and by half. */
static void
test_truncated(void **state)
{
    real r;

    (void)state;
    real_parcel(&r, "after-truncated");
    {
        const junk v[] = {{FAKE_BODY, r.listing, strlen(r.listing) - 1, {NULL}},
                          {FAKE_BODY, r.listing, strlen(r.listing) / 2, {NULL}},
                          TEXT("{")};

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/*
 * 2. JSON, but not a listing: an array, and objects whose "parcels" is not
 * an array or whose "next" is missing or not a string, each with the real
 * parcel inside. One check in parse_listing refuses them all.
 */
static void
test_not_object(void **state)
{
    real r;

    (void)state;
    real_parcel(&r, "after-not-object");
    {
        const junk v[] = {
            TEXT("[]"),
            TEXT(textf("[%s]", r.listing)),
            TEXT(textf("{\"parcels\": [%s]}", r.entry)),
            TEXT(textf("{\"parcels\": %s, \"next\": \"%s\"}", r.entry, r.next)),
            TEXT(textf("{\"parcels\": [%s], \"next\": 7}", r.entry)),
            TEXT(textf("{\"parcels\": [%s], \"next\": null}", r.entry)),
        };

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/*
 * 3. "next" with U+0000 (plain_string): cut at the NUL it would be the real
 * listing's own "next", and the real parcel would be taken from the junk.
 * Also a "next" too long for a cursor (the same check).
 */
static void
test_nul_in_next(void **state)
{
    char long_next[NG_QUEUE_ID_BYTES + 1];
    real r;

    (void)state;
    real_parcel(&r, "after-nul-in-next");
    memset(long_next, '9', NG_QUEUE_ID_BYTES);
    long_next[NG_QUEUE_ID_BYTES] = '\0';
    {
        const junk v[] = {
            TEXT(textf("{\"parcels\": [%s], \"next\": \"%s\\u0000junk\"}", r.entry, r.next)),
            TEXT(textf("{\"parcels\": [%s], \"next\": \"\\u0000%s\"}", r.entry, r.next)),
            TEXT(textf("{\"parcels\": [%s], \"next\": \"%s\"}", r.entry, long_next)),
        };

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/* 4. An "id" with U+0000, and ids missing, not a string or too long: the real parcel under each. */
static void
test_nul_in_id(void **state)
{
    char long_id[NG_QUEUE_ID_BYTES + 1];
    real r;

    (void)state;
    real_parcel(&r, "after-nul-in-id");
    memset(long_id, '7', NG_QUEUE_ID_BYTES);
    long_id[NG_QUEUE_ID_BYTES] = '\0';
    {
        const junk v[] = {
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\\u0000x\", \"parcel\": \"%s\"}], \"next\": \"%s\"}", r.id, r.b64,
                       r.next)),
            TEXT(textf("{\"parcels\": [{\"parcel\": \"%s\"}], \"next\": \"%s\"}", r.b64, r.next)),
            TEXT(textf("{\"parcels\": [{\"id\": 1, \"parcel\": \"%s\"}], \"next\": \"%s\"}", r.b64, r.next)),
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\", \"parcel\": \"%s\"}], \"next\": \"%s\"}", long_id, r.b64,
                       r.next)),
            TEXT(textf("{\"parcels\": [7], \"next\": \"%s\"}", r.next)),
        };

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/*
 * 5. Invalid base64: after the real parcel in the same listing (refused
 * whole, so not even that one is taken), and inside the real parcel's
 * base64: a character outside the alphabet, non-ASCII, a blank.
 */
static void
test_bad_base64(void **state)
{
    size_t half;
    real r;

    (void)state;
    real_parcel(&r, "after-bad-base64");
    half = strlen(r.b64) / 2;
    {
        const junk v[] = {
            TEXT(textf("{\"parcels\": [%s, {\"id\": \"junk-5\", \"parcel\": \"not base64!\"}], \"next\": \"junk-5\"}",
                       r.entry)),
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\", \"parcel\": \"%.*s*%s\"}], \"next\": \"%s\"}", r.id, (int)half,
                       r.b64, r.b64 + half, r.next)),
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\", \"parcel\": \"%.*s\\u00e9%s\"}], \"next\": \"%s\"}", r.id,
                       (int)half, r.b64, r.b64 + half, r.next)),
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\", \"parcel\": \"%.*s %s\"}], \"next\": \"%s\"}", r.id, (int)half,
                       r.b64, r.b64 + half, r.next)),
            /* no parcel at all, or not a string */
            TEXT(textf("{\"parcels\": [%s, {\"id\": \"junk-6\"}], \"next\": \"junk-6\"}", r.entry)),
            TEXT(textf("{\"parcels\": [%s, {\"id\": \"junk-7\", \"parcel\": 7}], \"next\": \"junk-7\"}", r.entry)),
        };

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/*
 * 6. U+0000 in base64: after the whole of the real parcel's (cut at the
 * NUL, it would decode to the real parcel), inside it, and alone at its end.
 */
static void
test_nul_in_base64(void **state)
{
    size_t half;
    real r;

    (void)state;
    real_parcel(&r, "after-nul-in-base64");
    half = strlen(r.b64) / 2;
    {
        const junk v[] = {
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\", \"parcel\": \"%s\\u0000AAAA\"}], \"next\": \"%s\"}", r.id,
                       r.b64, r.next)),
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\", \"parcel\": \"%.*s\\u0000%s\"}], \"next\": \"%s\"}", r.id,
                       (int)half, r.b64, r.b64 + half, r.next)),
            TEXT(textf("{\"parcels\": [{\"id\": \"%s\", \"parcel\": \"%s\\u0000\"}], \"next\": \"%s\"}", r.id, r.b64,
                       r.next)),
        };

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/* ==== answers over the poller's reply cap: the transfer fails, as a peer that does not answer ==== */

/* 8a. A body whose Content-Length is over the cap: refused before any of it is read. */
static void
test_huge_announced(void **state)
{
    real r;

    (void)state;
    real_parcel(&r, "after-huge-announced");
    {
        const junk v[] = {{FAKE_HUGE_LENGTH, NULL, 0, {curl_easy_strerror(CURLE_FILESIZE_EXCEEDED), NULL}}};

        RUN_CASE(&r, v, UNANSWERED, NULL);
    }
}

/*
 * 8b. A chunked body (no length said) that goes on past the cap: the write
 * callback refuses what goes over (or libcurl does, when it checks
 * CURLOPT_MAXFILESIZE during the transfer: newer versions).
 */
static void
test_huge_chunked(void **state)
{
    real r;

    (void)state;
    real_parcel(&r, "after-huge-chunked");
    {
        const junk v[] = {{FAKE_HUGE_CHUNKED,
                           NULL,
                           0,
                           {curl_easy_strerror(CURLE_WRITE_ERROR), curl_easy_strerror(CURLE_FILESIZE_EXCEEDED), NULL}}};

        RUN_CASE(&r, v, UNANSWERED, NULL);
    }
}

/*
 * 7. More entries than the limit asked (poll.batch 4): refused whole, with
 * the real parcel among them. (The poller never asks for more than its own
 * bound, so this refusal also covers any longer listing.)
 */
static void
test_over_limit(void **state)
{
    blob *b = blob_new();
    const char *e;
    real r;
    int i;

    (void)state;
    real_parcel(&r, "after-over-limit");
    e = textf("{\"parcels\": [%s", r.entry);
    blob_append(b, e, strlen(e));
    for (i = 0; i < POLL_BATCH; i++) {
        e = textf(", {\"id\": \"over-limit-%d\", \"parcel\": \"AAAA\"}", i);
        blob_append(b, e, strlen(e));
    }
    e = textf("], \"next\": \"%s\"}", r.next);
    blob_append(b, e, strlen(e));
    {
        const junk v[] = {{FAKE_BODY, text_of(b), b->len, {NULL}}};

        RUN_CASE(&r, v, REFUSED, NULL);
    }
}

/* ==== listings that parse: each parcel is checked and refused, and the cursor moves past them ==== */

/*
 * 9. Valid base64 of bytes that are no parcel: garbage, nothing at all, the
 * real parcel cut in half, and the real parcel with its last byte (its
 * MAC) flipped. Refused by the parcel check, each counted; the real parcel
 * is still taken afterwards (a refused copy is no replay).
 */
static void
test_garbage_parcel(void **state)
{
    uint8_t garbage[300];
    blob *flipped;
    real r;
    size_t i;

    (void)state;
    real_parcel(&r, "after-garbage-parcel");
    for (i = 0; i < sizeof garbage; i++)
        garbage[i] = (uint8_t)(i * 37 + 11);
    flipped = blob_of(r.bytes->data, r.bytes->len);
    flipped->data[flipped->len - 1] ^= 0x01;
    {
        const junk v[] = {TEXT(textf("{\"parcels\": [{\"id\": \"g-1\", \"parcel\": \"%s\"}, {\"id\": \"g-2\", "
                                     "\"parcel\": \"\"}, {\"id\": \"g-3\", \"parcel\": \"%s\"}, {\"id\": \"g-4\", "
                                     "\"parcel\": \"%s\"}], \"next\": \"garbage-next\"}",
                                     b64_of(garbage, sizeof garbage), b64_of(r.bytes->data, r.bytes->len / 2),
                                     b64_of(flipped->data, flipped->len)))};
        const taken tk = {4, 3, 1, "garbage-next"};

        RUN_CASE(&r, v, TAKEN, &tk);
    }
    /* The flipped one is refused by name: its header still names the message. */
    assert_int_equal(
        LOG_COUNT(&gw_b, "\"msg\":\"parcel refused\"", textf("\"message_id\":\"%s\"", r.m->id), "\"reason\":\"auth\""),
        1);
}

/* ==== the end: every real parcel delivered once, and both gateways stop cleanly ==== */

static void
test_stop(void **state)
{
    fake_req q;
    size_t i;

    (void)state;
    sleep_ms(QUIET_MS);
    /* Each checked in full by its test; the bodies went with that test's blobs. */
    for (i = 0; i < nsent; i++)
        if (sink_count(&bob.sink, sent[i].id) != 1)
            fail_msg("message %s reached bob's backend %d times", sent[i].id, sink_count(&bob.sink, sent[i].id));
    assert_int_equal(sink_total(&bob.sink), (int)nsent);
    assert_int_equal(sink_total(&alice.sink), 0);
    assert_false(fake_stray(&fake, &q));
    /* No parcel was taken from junk: its real copy would have been a replay. */
    assert_true(counts_now().replayed == 0);
    /* Exit 0 on SIGTERM: under ASan, with no leak either. */
    stop_gateway(&gw_b);
    stop_gateway(&gw_a);
    assert_int_equal(bob.sink.dropped, 0);
    pthread_mutex_lock(&fake.mu);
    i = (size_t)fake.nreqs;
    pthread_mutex_unlock(&fake.mu);
    print_message("%zu parcels delivered once each after junk; the fake peer answered %zu requests\n", nsent, i);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_empty_body, test_teardown),
        cmocka_unit_test_teardown(test_truncated, test_teardown),
        cmocka_unit_test_teardown(test_not_object, test_teardown),
        cmocka_unit_test_teardown(test_nul_in_next, test_teardown),
        cmocka_unit_test_teardown(test_nul_in_id, test_teardown),
        cmocka_unit_test_teardown(test_bad_base64, test_teardown),
        cmocka_unit_test_teardown(test_nul_in_base64, test_teardown),
        cmocka_unit_test_teardown(test_over_limit, test_teardown),
        cmocka_unit_test_teardown(test_huge_announced, test_teardown),
        cmocka_unit_test_teardown(test_huge_chunked, test_teardown),
        cmocka_unit_test_teardown(test_garbage_parcel, test_teardown),
        cmocka_unit_test_teardown(test_stop, test_teardown),
    };

    if (suite_init() != 0)
        return 1;
    return cmocka_run_group_tests_name("peer_junk", tests, group_setup, group_teardown);
}

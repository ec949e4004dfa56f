/*
 * The noisegate CLI as a user meets it: the real binary (NG_BIN) started with
 * posix_spawn, fed and drained through pipes, judged by its exit status,
 * stdout, stderr and the files it leaves. The library is linked only to
 * derive keys, to read headers back and to seal parcels the CLI cannot make
 * (expired ones, a bad meta), and jansson to parse the JSON the CLI prints.
 *
 * Every test runs in its own temporary directory (the working directory
 * while it runs), so relative file names in argv are the test's own files.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "cli_harness.h"
#include "ng_hex.h"
#include "ng_key.h"
#include "ng_parcel.h"
#include "ng_suite.h"

enum {
    EXIT_OK = 0,
    EXIT_NOT_OPENED = 1,
    EXIT_USAGE = 2,

};

#define LIMIT_BYTES ((size_t)64 * 1024 * 1024)
#define MIB         ((size_t)1024 * 1024)
#define HOUR_MS     ((uint64_t)60 * 60 * 1000)

static char home_dir[PATH_MAX];
static char work_dir[PATH_MAX];

typedef struct party {
    ng_keypair kp;
    char pub[2 * NG_KEY_BYTES + 1];
    char file[16];
} party;

/* The recipient, a sender, and a stranger whose keys must never work. */
static party rcpt, sndr, other;
static uint8_t psk_a[NG_PSK_BYTES];

/* A refusal: the given status, not a byte on stdout, and a reason on stderr. */

/* Byte-exact comparison without cmocka's per-byte dump, which a 1 MiB mismatch would flood. */
#define EXPECT_BYTES(b, data, len) expect_bytes_at((b), (data), (len), __LINE__)

static void
expect_bytes_at(const blob *b, const uint8_t *data, size_t len, int line)
{
    size_t i;

    if (b->len != len)
        fail_msg("line %d: after `%s`: %zu bytes, expected %zu", line, last_cmd, b->len, len);
    for (i = 0; i < len; i++)
        if (b->data[i] != data[i])
            fail_msg("line %d: after `%s`: byte %zu is %02x, expected %02x", line, last_cmd, i, b->data[i], data[i]);
}

/* Whether any entry of the work directory starts with prefix: catches a temp file left behind. */
static int
any_file_starting(const char *prefix)
{
    DIR *d = opendir(".");
    struct dirent *e;
    int found = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, prefix, strlen(prefix)) == 0)
            found = 1;
    closedir(d);
    return found;
}

static void
hex_of(char *out, size_t cap, const uint8_t *b, size_t len)
{
    ng_hex_encode(out, cap, b, len);
}

static void
make_party(party *p, const char *file)
{
    char text[2 * NG_KEY_BYTES + 2];

    ng_keypair_generate(&p->kp);
    hex_of(text, sizeof text, p->kp.priv, NG_KEY_BYTES);
    text[2 * NG_KEY_BYTES] = '\n';
    text[2 * NG_KEY_BYTES + 1] = 0;
    hex_of(p->pub, sizeof p->pub, p->kp.pub, NG_KEY_BYTES);
    snprintf(p->file, sizeof p->file, "%s", file);
    put_text(file, text);
}

static void
make_psk(uint8_t psk[NG_PSK_BYTES], const char *file)
{
    char text[2 * NG_PSK_BYTES + 2];

    randombytes_buf(psk, NG_PSK_BYTES);
    hex_of(text, sizeof text, psk, NG_PSK_BYTES);
    text[2 * NG_PSK_BYTES] = '\n';
    text[2 * NG_PSK_BYTES + 1] = 0;
    put_text(file, text);
}

static int
setup(void **state)
{
    const char *tmp = getenv("TMPDIR");
    uint8_t unused_psk[NG_PSK_BYTES];

    (void)state;
    snprintf(work_dir, sizeof work_dir, "%s/ng-cli-XXXXXX", tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
    if (mkdtemp(work_dir) == NULL || chdir(work_dir) != 0) {
        fprintf(stderr, "cannot create and enter %s: %s\n", work_dir, strerror(errno));
        return -1;
    }
    make_party(&rcpt, "r.key");
    make_party(&sndr, "s.key");
    make_party(&other, "o.key");
    make_psk(psk_a, "a.psk");
    make_psk(unused_psk, "b.psk");
    return 0;
}

static int
teardown(void **state)
{
    DIR *d;
    struct dirent *e;

    (void)state;
    blobs_free();
    ng_keypair_wipe(&rcpt.kp);
    ng_keypair_wipe(&sndr.kp);
    ng_keypair_wipe(&other.kp);
    /* The tests make only plain files, so one level of unlink empties the directory. */
    d = opendir(".");
    if (d != NULL) {
        while ((e = readdir(d)) != NULL)
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0 && unlink(e->d_name) != 0)
                rmdir(e->d_name);
        closedir(d);
    }
    if (chdir(home_dir) != 0 || rmdir(work_dir) != 0) {
        fprintf(stderr, "cannot remove %s: %s\n", work_dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* Body with every byte value, runs of NULs, and a NUL first and last: a text-mode or strlen bug shows. */
static blob *
binary_body(void)
{
    blob *b = blob_new();
    uint8_t zeros[300] = {0};
    uint8_t v;
    int i;

    for (i = 0; i < 256; i++) {
        v = (uint8_t)i;
        blob_append(b, &v, 1);
    }
    blob_append(b, zeros, sizeof zeros);
    for (i = 255; i >= 0; i--) {
        v = (uint8_t)i;
        blob_append(b, &v, 1);
    }
    blob_append(b, "\r\n\n\r\x1a\x04", 6);
    blob_append(b, zeros, 1);
    return b;
}

static blob *
random_body(size_t len)
{
    blob *b = blob_new();

    blob_reserve(b, len);
    randombytes_buf(b->data, len);
    b->len = len;
    b->data[len] = 0;
    return b;
}

typedef struct argv_buf {
    const char *v[MAX_ARGS + 1];
    size_t n;
} argv_buf;

static void
av_push(argv_buf *a, const char *const *args)
{
    size_t i;

    for (i = 0; args[i] != NULL; i++) {
        assert_true(a->n < MAX_ARGS);
        a->v[a->n++] = args[i];
    }
    a->v[a->n] = NULL;
}

#define AV(a, ...) av_push((a), ARGS(__VA_ARGS__))

/* The seal options that make pattern p from rcpt's public key (and sndr's key, psk a). */
static void
seal_opts(argv_buf *a, ng_pattern p)
{
    ng_pattern base = ng_pattern_base(p);

    AV(a, "seal", "--to", rcpt.pub);
    if (base != NG_PATTERN_N)
        AV(a, "--from", sndr.file);
    /* X is what --from gives by default; only K is asked for. */
    if (base == NG_PATTERN_K)
        AV(a, "--pattern", "K");
    if (ng_pattern_has_psk(p))
        AV(a, "--psk", "a.psk");
}

static void
open_opts(argv_buf *a, ng_pattern p)
{
    AV(a, "open", "--key", rcpt.file);
    if (ng_pattern_base(p) == NG_PATTERN_K)
        AV(a, "--from", sndr.pub);
    if (ng_pattern_has_psk(p))
        AV(a, "--psk", "a.psk");
}

static ng_parcel_header
header_of(const blob *parcel)
{
    ng_parcel_header h;

    assert_int_equal(ng_parcel_inspect(&h, parcel->data, parcel->len, 0), NG_OK);
    return h;
}

/*
 * Seals body with the CLI for pattern p (and suite, if given), checks the
 * header the library reads back, opens it with the CLI, and compares. With
 * via_files the body, parcel and output go through IN and -o files, else
 * through stdin and stdout. Returns the parcel.
 */
static blob *
roundtrip(ng_pattern p, const char *suite, ng_suite want_suite, const blob *body, int via_files)
{
    argv_buf sa = {{0}, 0}, oa = {{0}, 0};
    ng_parcel_header h;
    blob *parcel;
    result res;

    seal_opts(&sa, p);
    if (suite != NULL)
        AV(&sa, "--suite", suite);
    open_opts(&oa, p);
    if (via_files) {
        /* Stale files from an earlier round must not stand in for missing output. */
        unlink("body.bin");
        unlink("p.ngp");
        unlink("out.bin");
        put_file("body.bin", body->data, body->len);
        AV(&sa, "-o", "p.ngp", "body.bin");
        res = ng(NULL, sa.v);
        EXPECT_EXIT(res, EXIT_OK);
        assert_int_equal(res.out->len, 0);
        parcel = slurp("p.ngp");
        assert_non_null(parcel);
    } else {
        res = ng(body, sa.v);
        EXPECT_EXIT(res, EXIT_OK);
        parcel = res.out;
    }
    h = header_of(parcel);
    if (h.pattern != p)
        fail_msg("`%s` made pattern %s, expected %s", last_cmd, ng_pattern_name(h.pattern), ng_pattern_name(p));
    assert_int_equal(h.suite, want_suite);

    if (via_files) {
        AV(&oa, "-o", "out.bin", "p.ngp");
        res = ng(NULL, oa.v);
        EXPECT_EXIT(res, EXIT_OK);
        assert_int_equal(res.out->len, 0);
        EXPECT_BYTES(slurp("out.bin"), body->data, body->len);
    } else {
        res = ng(parcel, oa.v);
        EXPECT_EXIT(res, EXIT_OK);
        EXPECT_BYTES(res.out, body->data, body->len);
    }
    return parcel;
}

static const ng_pattern all_patterns[] = {NG_PATTERN_N,     NG_PATTERN_K,     NG_PATTERN_X,
                                          NG_PATTERN_NPSK0, NG_PATTERN_KPSK0, NG_PATTERN_XPSK1};
#define N_PATTERNS (sizeof all_patterns / sizeof all_patterns[0])

/* Seals with the library, for what the CLI cannot produce: a chosen clock, or a bad meta. */
static blob *
lib_seal(ng_pattern p, uint64_t created_ms, uint64_t ttl_ms, const char *meta, const blob *body)
{
    ng_seal_params sp;
    blob *parcel = blob_new();
    size_t size, len;

    memset(&sp, 0, sizeof sp);
    sp.pattern = p;
    sp.recipient_pub = rcpt.kp.pub;
    sp.sender = ng_pattern_base(p) == NG_PATTERN_N ? NULL : &sndr.kp;
    sp.psk = ng_pattern_has_psk(p) ? psk_a : NULL;
    sp.meta = (const uint8_t *)meta;
    sp.meta_len = strlen(meta);
    sp.body = body->data;
    sp.body_len = body->len;
    sp.created_ms = created_ms;
    sp.ttl_ms = ttl_ms;
    size = ng_parcel_sealed_size(&sp);
    assert_true(size > 0);
    blob_reserve(parcel, size);
    assert_int_equal(ng_parcel_seal(parcel->data, size, &len, &sp), NG_OK);
    assert_int_equal(len, size);
    parcel->len = len;
    return parcel;
}

/*
 * The parcel must not open with these open options (after "open"): the given
 * status (1 unless said), nothing on stdout, and with -o no output file, not
 * even a temporary one beside it. Tried through stdin and through a file.
 */
static void
expect_not_opened(const blob *parcel, const char *const *opts, int want)
{
    argv_buf a = {{0}, 0}, b = {{0}, 0};

    AV(&a, "open");
    av_push(&a, opts);
    EXPECT_REFUSED(ng(parcel, a.v), want);

    unlink("out.bin");
    put_file("bad.ngp", parcel->data, parcel->len);
    AV(&b, "open");
    av_push(&b, opts);
    AV(&b, "-o", "out.bin", "bad.ngp");
    EXPECT_REFUSED(ng(NULL, b.v), want);
    if (any_file_starting("out.bin"))
        fail_msg("`%s` refused but left an output file behind", last_cmd);
}

/* ---- keygen and pubkey ---- */

/* The public key of a key file, by the library. */
static void
derive_pub(char pub[2 * NG_KEY_BYTES + 1], const blob *keyfile)
{
    uint8_t priv[NG_KEY_BYTES];
    ng_keypair kp;

    assert_true(keyfile->len >= 2 * NG_KEY_BYTES);
    assert_int_equal(ng_hex_decode(priv, sizeof priv, (const char *)keyfile->data, 2 * NG_KEY_BYTES), NG_OK);
    assert_int_equal(ng_keypair_from_private(&kp, priv), NG_OK);
    hex_of(pub, 2 * NG_KEY_BYTES + 1, kp.pub, NG_KEY_BYTES);
    ng_keypair_wipe(&kp);
}

/* 64 lowercase hex characters and a newline, nothing else. */
static void
expect_key_text(const blob *b)
{
    char hex[2 * NG_KEY_BYTES + 1];

    assert_int_equal(b->len, 2 * NG_KEY_BYTES + 1);
    assert_int_equal(b->data[2 * NG_KEY_BYTES], '\n');
    memcpy(hex, b->data, 2 * NG_KEY_BYTES);
    hex[2 * NG_KEY_BYTES] = 0;
    assert_true(is_lower_hex(hex, 2 * NG_KEY_BYTES));
}

static void
test_keygen_file(void **state)
{
    char pub[2 * NG_KEY_BYTES + 1], priv_hex[2 * NG_KEY_BYTES + 1];
    struct stat st;
    result res;
    blob *key, *key2;

    (void)state;
    res = ng(NULL, ARGS("keygen", "-o", "k1.key"));
    EXPECT_EXIT(res, EXIT_OK);
    assert_int_equal(res.out->len, 0);
    assert_int_equal(stat("k1.key", &st), 0);
    /* umask is 022 here, so a file created 0644 or 0666 would show it. */
    assert_int_equal(st.st_mode & 07777, 0600);
    key = slurp("k1.key");
    assert_non_null(key);
    expect_key_text(key);
    /* The public key on stderr is the one of the private key in the file. */
    derive_pub(pub, key);
    if (strstr((const char *)res.err->data, pub) == NULL)
        fail_msg("keygen stderr lacks the public key %s: %s", pub, (char *)res.err->data);
    /* The private key is the file's alone. */
    memcpy(priv_hex, key->data, 2 * NG_KEY_BYTES);
    priv_hex[2 * NG_KEY_BYTES] = 0;
    assert_null(strstr((const char *)res.err->data, priv_hex));

    /* A second key is a different key. */
    res = ng(NULL, ARGS("keygen", "--output", "k2.key"));
    EXPECT_EXIT(res, EXIT_OK);
    key2 = slurp("k2.key");
    assert_non_null(key2);
    expect_key_text(key2);
    assert_memory_not_equal(key->data, key2->data, 2 * NG_KEY_BYTES);
}

static void
test_keygen_never_overwrites(void **state)
{
    struct stat st;
    blob *before, *after;

    (void)state;
    EXPECT_EXIT(ng(NULL, ARGS("keygen", "-o", "k.key")), EXIT_OK);
    before = slurp("k.key");
    assert_non_null(before);
    EXPECT_REFUSED(ng(NULL, ARGS("keygen", "-o", "k.key")), EXIT_USAGE);
    after = slurp("k.key");
    assert_non_null(after);
    EXPECT_BYTES(after, before->data, before->len);
    assert_int_equal(stat("k.key", &st), 0);
    assert_int_equal(st.st_mode & 07777, 0600);

    /* Nor an existing file that is not a key: it is kept as it was. */
    put_text("notes.txt", "precious\n");
    EXPECT_REFUSED(ng(NULL, ARGS("keygen", "-o", "notes.txt")), EXIT_USAGE);
    EXPECT_BYTES(slurp("notes.txt"), (const uint8_t *)"precious\n", 9);

    /* A dangling symlink is an existing name too: following it would write a key wherever it points. */
    assert_int_equal(symlink("elsewhere.key", "link.key"), 0);
    EXPECT_REFUSED(ng(NULL, ARGS("keygen", "-o", "link.key")), EXIT_USAGE);
    assert_false(exists("elsewhere.key"));

    /* An unwritable place is an I/O error. */
    EXPECT_REFUSED(ng(NULL, ARGS("keygen", "-o", "no/such/dir.key")), EXIT_USAGE);
}

static void
test_keygen_stdout(void **state)
{
    char pub[2 * NG_KEY_BYTES + 1];
    result res;

    (void)state;
    res = ng(NULL, ARGS("keygen"));
    EXPECT_EXIT(res, EXIT_OK);
    expect_key_text(res.out);
    derive_pub(pub, res.out);
    if (strstr((const char *)res.err->data, pub) == NULL)
        fail_msg("keygen stderr lacks the public key %s: %s", pub, (char *)res.err->data);
}

static void
test_pubkey(void **state)
{
    char expect[2 * NG_KEY_BYTES + 2];
    result res;

    (void)state;
    res = ng(NULL, ARGS("pubkey", rcpt.file));
    EXPECT_EXIT(res, EXIT_OK);
    snprintf(expect, sizeof expect, "%s\n", rcpt.pub);
    EXPECT_BYTES(res.out, (const uint8_t *)expect, strlen(expect));

    /* And a key from keygen, derived by the library from the file. */
    EXPECT_EXIT(ng(NULL, ARGS("keygen", "-o", "k.key")), EXIT_OK);
    res = ng(NULL, ARGS("pubkey", "k.key"));
    EXPECT_EXIT(res, EXIT_OK);
    derive_pub(expect, slurp("k.key"));
    expect[2 * NG_KEY_BYTES] = '\n';
    EXPECT_BYTES(res.out, (const uint8_t *)expect, 2 * NG_KEY_BYTES + 1);
}

static void
test_pubkey_bad_files(void **state)
{
    static const char *const names[] = {"short.key", "nonhex.key", "long.key",    "empty.key",
                                        "twonl.key", "space.key",  "missing.key", "."};
    char hex[2 * NG_KEY_BYTES + 8];
    size_t i;

    (void)state;
    snprintf(hex, sizeof hex, "%.63s\n", rcpt.pub); /* 63 hex characters */
    put_text("short.key", hex);
    snprintf(hex, sizeof hex, "%s\n", rcpt.pub);
    hex[10] = 'g';
    put_text("nonhex.key", hex);
    snprintf(hex, sizeof hex, "%sa\n", rcpt.pub); /* 65 hex characters */
    put_text("long.key", hex);
    put_text("empty.key", "");
    snprintf(hex, sizeof hex, "%s\n\n", rcpt.pub);
    put_text("twonl.key", hex);
    snprintf(hex, sizeof hex, "%s \n", rcpt.pub);
    put_text("space.key", hex);
    for (i = 0; i < sizeof names / sizeof names[0]; i++)
        EXPECT_REFUSED(ng(NULL, ARGS("pubkey", names[i])), EXIT_USAGE);
}

/* ---- seal and open ---- */

static void
test_roundtrip_stdio(void **state)
{
    blob *bin = binary_body(), *empty = blob_new();
    size_t i;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        roundtrip(all_patterns[i], NULL, NG_SUITE_DEFAULT, bin, 0);
        roundtrip(all_patterns[i], NULL, NG_SUITE_DEFAULT, empty, 0);
    }
}

static void
test_roundtrip_files(void **state)
{
    blob *bin = binary_body(), *empty = blob_new();
    size_t i;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        roundtrip(all_patterns[i], NULL, NG_SUITE_DEFAULT, bin, 1);
        roundtrip(all_patterns[i], NULL, NG_SUITE_DEFAULT, empty, 1);
    }
}

static void
test_roundtrip_large(void **state)
{
    blob *big = random_body(MIB), *parcel;
    /* Around where a body stops fitting the handshake message (N: 65535 - 48 overhead - 46 of prefix and
     * default meta) and where a transport message (65535 - 16) fills up. */
    static const size_t edges[] = {65441, 65442, 65519, 65520, 65442 + 65519, 65443 + 65519};
    size_t i;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        parcel = roundtrip(all_patterns[i], NULL, NG_SUITE_DEFAULT, big, 0);
        /* No Noise message exceeds 65535 bytes, so 1 MiB takes at least 17. */
        assert_true(header_of(parcel).n_messages >= 17);
    }
    roundtrip(NG_PATTERN_X, NULL, NG_SUITE_DEFAULT, big, 1);
    roundtrip(NG_PATTERN_NPSK0, NULL, NG_SUITE_DEFAULT, big, 1);
    for (i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        blob *b = random_body(edges[i]);

        roundtrip(NG_PATTERN_N, NULL, NG_SUITE_DEFAULT, b, 0);
        roundtrip(NG_PATTERN_X, NULL, NG_SUITE_DEFAULT, b, 0);
    }
}

/* X when --from is given, N otherwise; --psk turns them into the psk forms. */
static void
test_seal_pattern_choice(void **state)
{
    static const struct {
        const char *const args[8];
        ng_pattern want;
    } cases[] = {
        {{"--from", "s.key"}, NG_PATTERN_X},
        {{"--from", "s.key", "--pattern", "X"}, NG_PATTERN_X},
        {{"--from", "s.key", "--pattern", "K"}, NG_PATTERN_K},
        {{"--pattern", "N"}, NG_PATTERN_N},
        {{NULL}, NG_PATTERN_N},
        {{"--psk", "a.psk"}, NG_PATTERN_NPSK0},
        {{"--from", "s.key", "--psk", "a.psk"}, NG_PATTERN_XPSK1},
        {{"--from", "s.key", "--pattern", "K", "--psk", "a.psk"}, NG_PATTERN_KPSK0},
    };
    blob *body = blob_of("x", 1);
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        argv_buf a = {{0}, 0};
        result res;
        ng_parcel_header h;

        AV(&a, "seal", "--to", rcpt.pub);
        av_push(&a, cases[i].args);
        res = ng(body, a.v);
        EXPECT_EXIT(res, EXIT_OK);
        h = header_of(res.out);
        if (h.pattern != cases[i].want)
            fail_msg("`%s` made %s, expected %s", last_cmd, ng_pattern_name(h.pattern), ng_pattern_name(cases[i].want));
    }
}

static void
test_suites(void **state)
{
    blob *body = binary_body();
    ng_suite s;
    int tried_aes = 0;

    (void)state;
    for (s = NG_SUITE_CHACHAPOLY_BLAKE2B; s <= NG_SUITE_AESGCM_SHA512; s = (ng_suite)(s + 1)) {
        if (!ng_suite_available(s))
            continue;
        tried_aes |= s >= NG_SUITE_AESGCM_BLAKE2B;
        roundtrip(NG_PATTERN_X, ng_suite_name(s), s, body, 0);
        roundtrip(NG_PATTERN_KPSK0, ng_suite_name(s), s, body, 0);
    }
    if (!tried_aes)
        fprintf(stderr, "note: AESGCM not available here; only ChaChaPoly suites tried\n");
    /* The suite is named in full, as in the contract; it is not defaulted when misspelt. */
    EXPECT_REFUSED(ng(body, ARGS("seal", "--to", rcpt.pub, "--suite", "ChaChaPoly_SHA256")), EXIT_USAGE);
}

static void
test_open_wrong_key(void **state)
{
    blob *body = binary_body(), *parcel;
    size_t i;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        argv_buf a = {{0}, 0};
        ng_pattern p = all_patterns[i];

        parcel = roundtrip(p, NULL, NG_SUITE_DEFAULT, body, 0);
        AV(&a, "--key", other.file);
        if (ng_pattern_base(p) == NG_PATTERN_K)
            AV(&a, "--from", sndr.pub);
        if (ng_pattern_has_psk(p))
            AV(&a, "--psk", "a.psk");
        expect_not_opened(parcel, a.v, EXIT_NOT_OPENED);
    }
}

static void
test_open_psk_mismatch(void **state)
{
    blob *body = binary_body(), *npsk, *xpsk, *kpsk, *n, *x;

    (void)state;
    npsk = roundtrip(NG_PATTERN_NPSK0, NULL, NG_SUITE_DEFAULT, body, 0);
    xpsk = roundtrip(NG_PATTERN_XPSK1, NULL, NG_SUITE_DEFAULT, body, 0);
    kpsk = roundtrip(NG_PATTERN_KPSK0, NULL, NG_SUITE_DEFAULT, body, 0);
    n = roundtrip(NG_PATTERN_N, NULL, NG_SUITE_DEFAULT, body, 0);
    x = roundtrip(NG_PATTERN_X, NULL, NG_SUITE_DEFAULT, body, 0);

    /* Wrong psk. */
    expect_not_opened(npsk, ARGS("--key", "r.key", "--psk", "b.psk"), EXIT_NOT_OPENED);
    expect_not_opened(xpsk, ARGS("--key", "r.key", "--psk", "b.psk"), EXIT_NOT_OPENED);
    expect_not_opened(kpsk, ARGS("--key", "r.key", "--from", sndr.pub, "--psk", "b.psk"), EXIT_NOT_OPENED);
    /* No psk for a psk parcel. */
    expect_not_opened(npsk, ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    expect_not_opened(xpsk, ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    expect_not_opened(kpsk, ARGS("--key", "r.key", "--from", sndr.pub), EXIT_NOT_OPENED);
    /* A psk for a parcel without one: the receiver expected a psk, and the sender did not use it. */
    expect_not_opened(n, ARGS("--key", "r.key", "--psk", "a.psk"), EXIT_NOT_OPENED);
    expect_not_opened(x, ARGS("--key", "r.key", "--psk", "a.psk"), EXIT_NOT_OPENED);
}

static void
test_open_sender_mismatch(void **state)
{
    blob *body = binary_body(), *n, *x, *k, *xpsk, *npsk;
    result res;

    (void)state;
    n = roundtrip(NG_PATTERN_N, NULL, NG_SUITE_DEFAULT, body, 0);
    x = roundtrip(NG_PATTERN_X, NULL, NG_SUITE_DEFAULT, body, 0);
    k = roundtrip(NG_PATTERN_K, NULL, NG_SUITE_DEFAULT, body, 0);
    xpsk = roundtrip(NG_PATTERN_XPSK1, NULL, NG_SUITE_DEFAULT, body, 0);
    npsk = roundtrip(NG_PATTERN_NPSK0, NULL, NG_SUITE_DEFAULT, body, 0);

    /* X: --from names the only acceptable sender. The right one opens... */
    res = ng(x, ARGS("open", "--key", "r.key", "--from", sndr.pub));
    EXPECT_EXIT(res, EXIT_OK);
    EXPECT_BYTES(res.out, body->data, body->len);
    /* ...any other is refused. */
    expect_not_opened(x, ARGS("--key", "r.key", "--from", other.pub), EXIT_NOT_OPENED);
    expect_not_opened(xpsk, ARGS("--key", "r.key", "--psk", "a.psk", "--from", other.pub), EXIT_NOT_OPENED);
    /* N has no sender to match: asking for one refuses it. */
    expect_not_opened(n, ARGS("--key", "r.key", "--from", sndr.pub), EXIT_NOT_OPENED);
    expect_not_opened(npsk, ARGS("--key", "r.key", "--psk", "a.psk", "--from", sndr.pub), EXIT_NOT_OPENED);
    /* K with somebody else's key. */
    expect_not_opened(k, ARGS("--key", "r.key", "--from", other.pub), EXIT_NOT_OPENED);
    expect_not_opened(k, ARGS("--key", "r.key", "--from", rcpt.pub), EXIT_NOT_OPENED);
}

static void
test_open_k_needs_from(void **state)
{
    blob *body = binary_body(), *k, *kpsk;
    result res;

    (void)state;
    k = roundtrip(NG_PATTERN_K, NULL, NG_SUITE_DEFAULT, body, 0);
    kpsk = roundtrip(NG_PATTERN_KPSK0, NULL, NG_SUITE_DEFAULT, body, 0);
    res = ng(k, ARGS("open", "--key", "r.key"));
    EXPECT_REFUSED(res, EXIT_USAGE);
    if (strstr((const char *)res.err->data, "--from") == NULL)
        fail_msg("K without --from: the message does not name --from: %s", (char *)res.err->data);
    expect_not_opened(k, ARGS("--key", "r.key"), EXIT_USAGE);
    res = ng(kpsk, ARGS("open", "--key", "r.key", "--psk", "a.psk"));
    EXPECT_REFUSED(res, EXIT_USAGE);
    assert_non_null(strstr((const char *)res.err->data, "--from"));
}

static blob *
with_byte_flipped(const blob *b, size_t at)
{
    blob *c = blob_of(b->data, b->len);

    assert_true(at < c->len);
    c->data[at] ^= 0x01;
    return c;
}

static void
test_open_tampered(void **state)
{
    blob *body = random_body(200 * 1024), *parcel, *c;
    /* Magic, pattern, message id, created, expires, recipient key id, message count. */
    static const size_t header_offsets[] = {0, 4, 8, 30, 39, 40, 72, 105};
    size_t i;

    (void)state;
    parcel = roundtrip(NG_PATTERN_X, NULL, NG_SUITE_DEFAULT, body, 0);
    expect_not_opened(with_byte_flipped(parcel, parcel->len / 2), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    expect_not_opened(with_byte_flipped(parcel, parcel->len - 1), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    /* The header is the Noise prologue: any change to it is an authentication failure, or a parse one. */
    for (i = 0; i < sizeof header_offsets / sizeof header_offsets[0]; i++)
        expect_not_opened(with_byte_flipped(parcel, header_offsets[i]), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    /* K: the sender key id is how the recipient picks the key; a changed one must not open either. */
    c = roundtrip(NG_PATTERN_K, NULL, NG_SUITE_DEFAULT, body, 0);
    expect_not_opened(with_byte_flipped(c, 72), ARGS("--key", "r.key", "--from", sndr.pub), EXIT_NOT_OPENED);
    expect_not_opened(with_byte_flipped(c, c->len / 2), ARGS("--key", "r.key", "--from", sndr.pub), EXIT_NOT_OPENED);
    /* Truncated: by one byte, mid-header, nothing at all. */
    expect_not_opened(blob_of(parcel->data, parcel->len - 1), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    expect_not_opened(blob_of(parcel->data, 50), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    expect_not_opened(blob_of(parcel->data, NG_PARCEL_HEADER_BYTES), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    expect_not_opened(blob_new(), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    /* Trailing garbage. */
    c = blob_of(parcel->data, parcel->len);
    blob_append(c, "\0", 1);
    expect_not_opened(c, ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    /* Not a parcel at all. */
    expect_not_opened(random_body(4096), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    /* The untouched parcel still opens: the refusals were about the damage. */
    EXPECT_EXIT(ng(parcel, ARGS("open", "--key", "r.key")), EXIT_OK);
}

static void
test_open_expiry(void **state)
{
    blob *body = binary_body(), *expired, *future;
    uint64_t now = ng_parcel_now_ms();
    argv_buf a;
    result res;
    size_t i;

    (void)state;
    for (i = 0; i < N_PATTERNS; i++) {
        ng_pattern p = all_patterns[i];

        /* Sealed two hours ago for one hour. */
        expired = lib_seal(p, now - 2 * HOUR_MS, HOUR_MS, "{\"content_type\":\"text/plain\"}", body);
        memset(&a, 0, sizeof a);
        open_opts(&a, p);
        expect_not_opened(expired, a.v + 1, EXIT_NOT_OPENED); /* the options, past "open" */
        AV(&a, "--ignore-expiry");
        res = ng(expired, a.v);
        EXPECT_EXIT(res, EXIT_OK);
        EXPECT_BYTES(res.out, body->data, body->len);
    }
    /* Expired a second ago. */
    expired = lib_seal(NG_PATTERN_N, now - 3601000, 3600000, "{\"content_type\":\"text/plain\"}", body);
    expect_not_opened(expired, ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    /* Created an hour from now: beyond any clock skew allowance. */
    future = lib_seal(NG_PATTERN_N, now + HOUR_MS, HOUR_MS, "{\"content_type\":\"text/plain\"}", body);
    expect_not_opened(future, ARGS("--key", "r.key"), EXIT_NOT_OPENED);
    /* And the same clock with a live window opens: the refusals above were the clock's. */
    res = ng(lib_seal(NG_PATTERN_N, now - 1000, HOUR_MS, "{\"content_type\":\"text/plain\"}", body),
             ARGS("open", "--key", "r.key"));
    EXPECT_EXIT(res, EXIT_OK);
    EXPECT_BYTES(res.out, body->data, body->len);
}

/* The meta must be a JSON object with a content_type; an authentic parcel that breaks that is malformed. */
static void
test_open_bad_meta(void **state)
{
    static const char *const metas[] = {"", "[1]", "{\"type\":\"x\"}", "{\"content_type\":7}", "{\"content_type\":"};
    blob *body = binary_body();
    size_t i;

    (void)state;
    for (i = 0; i < sizeof metas / sizeof metas[0]; i++)
        expect_not_opened(lib_seal(NG_PATTERN_N, 0, HOUR_MS, metas[i], body), ARGS("--key", "r.key"), EXIT_NOT_OPENED);
}

/* ---- inspect and --json ---- */

static json_t *
parse_json_flags(const blob *b, size_t flags)
{
    json_error_t jerr;
    json_t *j = json_loadb((const char *)b->data, b->len, flags, &jerr);

    if (j == NULL)
        fail_msg("`%s`: not JSON (%s at line %d): %s", last_cmd, jerr.text, jerr.line, (char *)b->data);
    assert_true(json_is_object(j));
    return j;
}

static json_t *
parse_json(const blob *b)
{
    return parse_json_flags(b, 0);
}

static const char *
jstr(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_string(v))
        fail_msg("`%s`: \"%s\" is not a string", last_cmd, key);
    return json_string_value(v);
}

static json_int_t
jint(json_t *o, const char *key)
{
    json_t *v = json_object_get(o, key);

    if (!json_is_integer(v))
        fail_msg("`%s`: \"%s\" is not an integer", last_cmd, key);
    return json_integer_value(v);
}

static void
inspect_one(ng_pattern p, const char *ttl)
{
    char rid[2 * NG_KEY_ID_BYTES + 1], sid[2 * NG_KEY_ID_BYTES + 1], mid[2 * NG_PARCEL_MESSAGE_ID_BYTES + 1];
    uint8_t id[NG_KEY_ID_BYTES];
    argv_buf a = {{0}, 0};
    uint64_t before, after;
    ng_parcel_header h;
    blob *parcel, *text;
    json_t *j, *again;
    result res;

    seal_opts(&a, p);
    AV(&a, "--ttl", ttl);
    before = ng_parcel_now_ms();
    res = ng(blob_of("hello", 5), a.v);
    after = ng_parcel_now_ms();
    EXPECT_EXIT(res, EXIT_OK);
    parcel = res.out;
    h = header_of(parcel);

    res = ng(parcel, ARGS("inspect"));
    EXPECT_EXIT(res, EXIT_OK);
    text = res.out;
    j = parse_json(text);
    assert_string_equal(jstr(j, "pattern"), ng_pattern_name(p));
    assert_string_equal(jstr(j, "suite"), "25519_ChaChaPoly_BLAKE2b");
    assert_true(is_lower_hex(jstr(j, "message_id"), 2 * NG_PARCEL_MESSAGE_ID_BYTES));
    hex_of(mid, sizeof mid, h.message_id, sizeof h.message_id);
    assert_string_equal(jstr(j, "message_id"), mid);
    assert_true(jint(j, "created") >= (json_int_t)before && jint(j, "created") <= (json_int_t)after);
    assert_int_equal(jint(j, "expires"), jint(j, "created") + (json_int_t)strtoll(ttl, NULL, 10) * 1000);
    ng_key_id(id, rcpt.kp.pub);
    hex_of(rid, sizeof rid, id, sizeof id);
    assert_string_equal(jstr(j, "recipient_key_id"), rid);
    if (ng_pattern_base(p) == NG_PATTERN_K) {
        /* K tells the recipient which pre-known key to use; the others must not reveal the sender. */
        ng_key_id(id, sndr.kp.pub);
        hex_of(sid, sizeof sid, id, sizeof id);
        assert_string_equal(jstr(j, "sender_key_id"), sid);
    } else {
        assert_true(json_is_null(json_object_get(j, "sender_key_id")));
    }
    assert_true(jint(j, "messages") >= 1);
    assert_int_equal(jint(j, "messages"), h.n_messages);
    json_decref(j);

    /* The same from a file, and from "-". */
    put_file("i.ngp", parcel->data, parcel->len);
    res = ng(NULL, ARGS("inspect", "i.ngp"));
    EXPECT_EXIT(res, EXIT_OK);
    j = parse_json(text);
    again = parse_json(res.out);
    assert_true(json_equal(j, again));
    json_decref(again);
    res = ng(parcel, ARGS("inspect", "-"));
    EXPECT_EXIT(res, EXIT_OK);
    again = parse_json(res.out);
    assert_true(json_equal(j, again));
    json_decref(again);
    json_decref(j);
}

static void
test_inspect(void **state)
{
    blob *big = random_body(MIB);
    result res;
    json_t *j;

    (void)state;
    inspect_one(NG_PATTERN_K, "3600");
    inspect_one(NG_PATTERN_N, "60");
    inspect_one(NG_PATTERN_X, "86400");
    inspect_one(NG_PATTERN_KPSK0, "1");
    inspect_one(NG_PATTERN_NPSK0, "7200");
    inspect_one(NG_PATTERN_XPSK1, "31536000");

    /* A 1 MiB body shows as many messages. */
    res = ng(big, ARGS("seal", "--to", rcpt.pub));
    EXPECT_EXIT(res, EXIT_OK);
    res = ng(res.out, ARGS("inspect"));
    EXPECT_EXIT(res, EXIT_OK);
    j = parse_json(res.out);
    assert_true(jint(j, "messages") >= 17);
    json_decref(j);

    /* A non-default suite is reported as such. */
    res = ng(big, ARGS("seal", "--to", rcpt.pub, "--suite", "25519_ChaChaPoly_SHA256"));
    EXPECT_EXIT(res, EXIT_OK);
    res = ng(res.out, ARGS("inspect"));
    EXPECT_EXIT(res, EXIT_OK);
    j = parse_json(res.out);
    assert_string_equal(jstr(j, "suite"), "25519_ChaChaPoly_SHA256");
    json_decref(j);
}

static void
test_inspect_garbage(void **state)
{
    blob *parcel;
    result res;

    (void)state;
    res = ng(blob_of("hello", 5), ARGS("seal", "--to", rcpt.pub));
    EXPECT_EXIT(res, EXIT_OK);
    parcel = res.out;
    EXPECT_REFUSED(ng(random_body(1000), ARGS("inspect")), EXIT_NOT_OPENED);
    EXPECT_REFUSED(ng(blob_of("NGP1", 4), ARGS("inspect")), EXIT_NOT_OPENED);
    EXPECT_REFUSED(ng(NULL, ARGS("inspect")), EXIT_NOT_OPENED);
    EXPECT_REFUSED(ng(blob_of(parcel->data, parcel->len - 1), ARGS("inspect")), EXIT_NOT_OPENED);
    EXPECT_REFUSED(ng(with_byte_flipped(parcel, 6), ARGS("inspect")), EXIT_NOT_OPENED); /* flags */
    EXPECT_REFUSED(ng(NULL, ARGS("inspect", "missing.ngp")), EXIT_USAGE);
}

/*
 * created and expires are unsigned 64-bit in the header, and inspect needs no
 * key, so anyone can hand it one past INT64_MAX: it must be refused, never
 * printed as a negative number.
 */
static void
test_inspect_far_future_times(void **state)
{
    /* The library will not seal such times, so write them into a real
     * parcel's header: inspect needs no key and must refuse them rather than
     * print them as negative numbers. */
    static const uint64_t huge = ((uint64_t)1 << 63) + 5;
    blob *parcel = lib_seal(NG_PATTERN_N, 0, HOUR_MS, "{\"content_type\":\"a\"}", blob_new());
    result res;
    int i;

    (void)state;
    for (i = 0; i < 8; i++) {
        parcel->data[24 + i] = (uint8_t)(huge >> (56 - 8 * i));
        parcel->data[32 + i] = (uint8_t)((huge + HOUR_MS) >> (56 - 8 * i));
    }
    res = ng(parcel, ARGS("inspect"));
    EXPECT_EXIT(res, EXIT_NOT_OPENED);
    assert_int_equal(res.out->len, 0);
}

static json_t *
open_json(const blob *parcel, const char *const *opts, const blob *body)
{
    argv_buf a = {{0}, 0};
    result res;

    AV(&a, "open", "--json");
    av_push(&a, opts);
    res = ng(parcel, a.v);
    EXPECT_EXIT(res, EXIT_OK);
    EXPECT_BYTES(res.out, body->data, body->len);
    return parse_json(res.err);
}

static void
test_open_json(void **state)
{
    static const char ct[] = "text/plain; charset=utf-8";
    blob *body = binary_body();
    json_t *j, *meta;
    result res;

    (void)state;
    /* X: the sender is learned from the parcel. */
    res = ng(body, ARGS("seal", "--to", rcpt.pub, "--from", "s.key", "--content-type", ct));
    EXPECT_EXIT(res, EXIT_OK);
    j = open_json(res.out, ARGS("--key", "r.key"), body);
    assert_string_equal(jstr(j, "pattern"), "X");
    meta = json_object_get(j, "meta");
    assert_true(json_is_object(meta));
    assert_string_equal(jstr(meta, "content_type"), ct);
    assert_string_equal(jstr(j, "sender"), sndr.pub);
    json_decref(j);

    /* Xpsk1 through a file and -o: the body goes to the file, the report still to stderr. */
    res = ng(body, ARGS("seal", "--to", rcpt.pub, "--from", "s.key", "--psk", "a.psk", "--content-type",
                        "application/cloudevents+json", "-o", "j.ngp"));
    EXPECT_EXIT(res, EXIT_OK);
    res = ng(NULL, ARGS("open", "--key", "r.key", "--psk", "a.psk", "--json", "-o", "j.out", "j.ngp"));
    EXPECT_EXIT(res, EXIT_OK);
    assert_int_equal(res.out->len, 0);
    EXPECT_BYTES(slurp("j.out"), body->data, body->len);
    j = parse_json(res.err);
    assert_string_equal(jstr(j, "pattern"), "Xpsk1");
    assert_string_equal(jstr(json_object_get(j, "meta"), "content_type"), "application/cloudevents+json");
    assert_string_equal(jstr(j, "sender"), sndr.pub);
    json_decref(j);

    /* K: the sender is the one given. */
    res = ng(body, ARGS("seal", "--to", rcpt.pub, "--from", "s.key", "--pattern", "K", "--content-type", "a/b"));
    EXPECT_EXIT(res, EXIT_OK);
    j = open_json(res.out, ARGS("--key", "r.key", "--from", sndr.pub), body);
    assert_string_equal(jstr(j, "pattern"), "K");
    assert_string_equal(jstr(json_object_get(j, "meta"), "content_type"), "a/b");
    assert_string_equal(jstr(j, "sender"), sndr.pub);
    json_decref(j);

    /* N: anonymous, and a default content type still present. */
    res = ng(body, ARGS("seal", "--to", rcpt.pub));
    EXPECT_EXIT(res, EXIT_OK);
    j = open_json(res.out, ARGS("--key", "r.key"), body);
    assert_string_equal(jstr(j, "pattern"), "N");
    assert_true(strlen(jstr(json_object_get(j, "meta"), "content_type")) > 0);
    assert_true(json_is_null(json_object_get(j, "sender")));
    json_decref(j);
}

/* ---- usage, limits, broken pipes ---- */

static void
test_usage_errors(void **state)
{
    char short_hex[2 * NG_KEY_BYTES], long_hex[2 * NG_KEY_BYTES + 3], bad_hex[2 * NG_KEY_BYTES + 1];
    char zero_hex[2 * NG_KEY_BYTES + 1];
    /* Filled in below, where the key strings exist. */
    const char *const *cases[64];
    blob *body = blob_of("hello", 5);
    size_t n = 0, i;

    (void)state;
    memcpy(short_hex, rcpt.pub, sizeof short_hex - 1);
    short_hex[sizeof short_hex - 1] = 0;
    snprintf(long_hex, sizeof long_hex, "%s00", rcpt.pub);
    memcpy(bad_hex, rcpt.pub, sizeof bad_hex);
    bad_hex[0] = 'x';
    memset(zero_hex, '0', 2 * NG_KEY_BYTES);
    zero_hex[2 * NG_KEY_BYTES] = 0;
    put_text("short.psk", "00112233\n");

    cases[n++] = ARGS("frobnicate");
    cases[n++] = ARGS("--frobnicate");
    cases[n++] = ARGS("keygen", "--bogus");
    cases[n++] = ARGS("keygen", "-o");
    cases[n++] = ARGS("keygen", "-o", "k.key", "extra");
    cases[n++] = ARGS("pubkey");
    cases[n++] = ARGS("pubkey", "r.key", "s.key");
    cases[n++] = ARGS("seal", "--bogus", "--to", rcpt.pub);
    cases[n++] = ARGS("seal");
    cases[n++] = ARGS("seal", "--from", "s.key");
    cases[n++] = ARGS("seal", "--to");
    cases[n++] = ARGS("seal", "--to", short_hex);
    cases[n++] = ARGS("seal", "--to", long_hex);
    cases[n++] = ARGS("seal", "--to", bad_hex);
    cases[n++] = ARGS("seal", "--to", "");
    /* A small-order key would give a shared secret everybody knows. */
    cases[n++] = ARGS("seal", "--to", zero_hex);
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--pattern", "K");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--pattern", "X");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--pattern", "N", "--from", "s.key");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--pattern", "Q");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--ttl", "0");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--ttl", "abc");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--ttl", "-5");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--ttl", "10s");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--ttl", "");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--ttl", "99999999999999999999999");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--suite", "25519_Rot13_MD5");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--suite", "");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--from", "missing.key");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--from", "short.psk");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--psk", "missing.psk");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "--psk", "short.psk");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "missing.txt");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "a.psk", "b.psk");
    cases[n++] = ARGS("seal", "--to", rcpt.pub, "-o", "no/such/dir.ngp");
    cases[n++] = ARGS("open");
    cases[n++] = ARGS("open", "--bogus", "--key", "r.key");
    cases[n++] = ARGS("open", "--key", "missing.key");
    cases[n++] = ARGS("open", "--key", "short.psk");
    cases[n++] = ARGS("open", "--key", "r.key", "--from", "xyz");
    cases[n++] = ARGS("open", "--key", "r.key", "--psk", "short.psk");
    cases[n++] = ARGS("open", "--key", "r.key", "missing.ngp");
    cases[n++] = ARGS("open", "--key", "r.key", "a.psk", "b.psk");
    cases[n++] = ARGS("inspect", "--bogus");
    cases[n++] = ARGS("inspect", "a.psk", "b.psk");
    assert_true(n <= sizeof cases / sizeof cases[0]);

    /* A body on stdin, so a command that wrongly went ahead would have something to succeed with. */
    for (i = 0; i < n; i++)
        EXPECT_REFUSED(ng(body, cases[i]), EXIT_USAGE);
    /* No arguments at all. */
    EXPECT_EXIT(ng_run(NULL, 0, 0, (const char *const[]){NULL}), EXIT_USAGE);
    /* None of the refused seals left a parcel or temp file. */
    assert_false(any_file_starting("no"));
    assert_false(exists("k.key"));
}

static blob *
over_limit_input(size_t len)
{
    blob *b = blob_new();

    blob_reserve(b, len);
    /* Not zeros: the pattern must not matter, but a page of zeros could be special-cased by nobody. */
    memset(b->data, 'A', len);
    b->len = len;
    return b;
}

static void
expect_limit_message(result res)
{
    const char *err = (const char *)res.err->data;

    EXPECT_REFUSED(res, EXIT_USAGE);
    if (strstr(err, "67108864") == NULL && strstr(err, "64 MiB") == NULL)
        fail_msg("`%s`: the message does not state the limit: %s", last_cmd, err);
}

static void
test_input_limit(void **state)
{
    blob *big = over_limit_input(LIMIT_BYTES + 1);
    result res;

    (void)state;
    expect_limit_message(ng(big, ARGS("seal", "--to", rcpt.pub)));
    expect_limit_message(ng(big, ARGS("seal", "--to", rcpt.pub, "-o", "big.ngp")));
    assert_false(any_file_starting("big.ngp"));
    expect_limit_message(ng(big, ARGS("open", "--key", "r.key")));
    expect_limit_message(ng(big, ARGS("inspect")));
    /* Exactly the limit is not over it: read whole, then judged as a parcel (and found not to be one). */
    big->len = LIMIT_BYTES;
    res = ng(big, ARGS("inspect"));
    EXPECT_REFUSED(res, EXIT_NOT_OPENED);
    res = ng(big, ARGS("open", "--key", "r.key"));
    EXPECT_REFUSED(res, EXIT_NOT_OPENED);
    /* A body of exactly the limit is accepted as input, but no parcel of it fits the limit. */
    res = ng(big, ARGS("seal", "--to", rcpt.pub));
    EXPECT_REFUSED(res, EXIT_USAGE);
}

/* A reader that went away is a write error (exit 2), not a death by SIGPIPE. */
static void
test_closed_stdout(void **state)
{
    blob *body = random_body(256 * 1024), *parcel;
    result res;

    (void)state;
    res = ng(body, ARGS("seal", "--to", rcpt.pub));
    EXPECT_EXIT(res, EXIT_OK);
    parcel = res.out;

    res = ng_run(parcel->data, parcel->len, STDOUT_CLOSED, ARGS("open", "--key", "r.key"));
    EXPECT_EXIT(res, EXIT_USAGE);
    res = ng_run(body->data, body->len, STDOUT_CLOSED, ARGS("seal", "--to", rcpt.pub));
    EXPECT_EXIT(res, EXIT_USAGE);
    res = ng_run(parcel->data, parcel->len, STDOUT_CLOSED, ARGS("inspect"));
    EXPECT_EXIT(res, EXIT_USAGE);
    res = ng_run(NULL, 0, STDOUT_CLOSED, ARGS("pubkey", "r.key"));
    EXPECT_EXIT(res, EXIT_USAGE);
    res = ng_run(NULL, 0, STDOUT_CLOSED, ARGS("keygen"));
    EXPECT_EXIT(res, EXIT_USAGE);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen_file, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_never_overwrites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_keygen_stdout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubkey, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pubkey_bad_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_stdio, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_roundtrip_large, setup, teardown),
        cmocka_unit_test_setup_teardown(test_seal_pattern_choice, setup, teardown),
        cmocka_unit_test_setup_teardown(test_suites, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_wrong_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_psk_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_sender_mismatch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_k_needs_from, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_tampered, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_expiry, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_bad_meta, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect_garbage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inspect_far_future_times, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_json, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_input_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_stdout, setup, teardown),
    };
    const char *bin = getenv("NG_BIN");
    int n;

    if (bin == NULL || bin[0] == '\0') {
        fprintf(stderr, "test_cli: NG_BIN is not set; run `make test`, or set NG_BIN to the noisegate binary\n");
        return 2;
    }
    if (getcwd(home_dir, sizeof home_dir) == NULL || sodium_init() < 0)
        return 2;
    /* Made absolute, since every test changes into its own directory. */
    n = bin[0] == '/' ? snprintf(ng_bin, sizeof ng_bin, "%s", bin)
                      : snprintf(ng_bin, sizeof ng_bin, "%s/%s", home_dir, bin);
    if (n < 0 || (size_t)n >= sizeof ng_bin || access(ng_bin, X_OK) != 0) {
        fprintf(stderr, "test_cli: NG_BIN=%s is not an executable file: %s\n", bin, strerror(errno));
        return 2;
    }
    /* A fixed umask, so a key file created with loose permissions cannot hide behind a strict one. */
    umask(022);
    /* The child writing into a pipe we closed must not kill us when we write to its stdin. */
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}

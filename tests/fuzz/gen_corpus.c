/*
 * gen_corpus: writes the seed corpora of the parcel fuzz targets. Build and run from the top of the tree (one
 * command; the backslashes only keep it within 120 columns):
 *
 *   gcc -std=c11 -O1 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Ienvelope -o build/gen_corpus \
 *     tests/fuzz/gen_corpus.c envelope/ng_*.c -lsodium -lpthread && \
 *     rm -rf tests/fuzz/corpus/parcel_open tests/fuzz/corpus/parcel_inspect && build/gen_corpus tests/fuzz/corpus
 *
 * (Only those two directories: the other targets' seeds are written by hand and kept.)
 *
 * Every seed is a real parcel sealed to the recipient of fuzz_keys.h (with its
 * sender and psk where the pattern needs them), so fuzz_parcel_open starts
 * from inputs that open and its mutations reach the cryptography. A few
 * malformed seeds start the framing checks off, and a few authentic ones
 * fail only after decryption (see seal_plaintext). The same files go to
 * <dir>/parcel_open and <dir>/parcel_inspect.
 *
 * Randomness (ephemeral keys) comes from a fixed seed, so a rerun rewrites
 * byte-identical files and the corpus only changes in git when the format or
 * the keys do. Each parcel is opened again before it is written: a seed that
 * does not open would be useless to the open target.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sodium.h>

#include "fuzz_keys.h"
#include "ng_noise.h"
#include "ng_parcel.h"

enum {
    MAX_PARCEL = 4096,
    MAX_BODY = 300,
};

/* Fixed, so that regenerating gives the same bytes; the open target ignores expiry anyway. */
static const uint64_t created_ms = 1700000000000ull;
static const uint64_t ttl_ms = 24ull * 60 * 60 * 1000;
static const char meta[] = "{\"content_type\":\"text/plain\"}";

static const char *out_dirs[2];
static unsigned n_written;
static size_t bytes_written;

/* libsodium randomness from a counter and a fixed seed: deterministic output. */
static uint64_t rng_calls;

static void
rng_buf(void *const buf, const size_t size)
{
    uint8_t seed[randombytes_SEEDBYTES] = "noisegate gen_corpus fixed seed";
    int i;

    for (i = 0; i < 8; i++)
        seed[i] ^= (uint8_t)(rng_calls >> (8 * i));
    rng_calls++;
    randombytes_buf_deterministic(buf, size, seed);
}

static uint32_t
rng_random(void)
{
    uint32_t v;

    rng_buf(&v, sizeof v);
    return v;
}

static const char *
rng_name(void)
{
    return "gen_corpus-deterministic";
}

static randombytes_implementation rng_impl = {
    .implementation_name = rng_name,
    .random = rng_random,
    .buf = rng_buf,
};

static void
die(const char *what, const char *detail)
{
    fprintf(stderr, "gen_corpus: %s: %s\n", what, detail);
    exit(1);
}

static void
make_dir(const char *path)
{
    if (mkdir(path, 0755) != 0 && errno != EEXIST)
        die(path, strerror(errno));
}

static void
write_seed(const char *name, const uint8_t *data, size_t len)
{
    char path[512];
    FILE *f;
    int i;

    for (i = 0; i < 2; i++) {
        if ((size_t)snprintf(path, sizeof path, "%s/%s", out_dirs[i], name) >= sizeof path)
            die(name, "path too long");
        f = fopen(path, "wb");
        if (f == NULL)
            die(path, strerror(errno));
        if (fwrite(data, 1, len, f) != len || fclose(f) != 0)
            die(path, "write failed");
    }
    n_written++;
    bytes_written += len;
}

/* Seals one parcel into out and checks that the fuzz target's keys open it. */
static size_t
seal(uint8_t *out, ng_pattern pattern, ng_suite suite, size_t body_len, size_t max_chunk, const ng_keypair *rcpt,
     const ng_keypair *snd)
{
    static unsigned counter;
    uint8_t body[MAX_BODY], message_id[NG_PARCEL_MESSAGE_ID_BYTES], plain[MAX_PARCEL];
    ng_seal_params sp;
    ng_open_params op;
    ng_opened o;
    size_t i, len;
    ng_err err;

    for (i = 0; i < body_len; i++)
        body[i] = (uint8_t)(i * 37 + 11);
    memset(message_id, 0, sizeof message_id);
    memcpy(message_id, "gen_corpus", 10);
    message_id[15] = (uint8_t)++counter;

    memset(&sp, 0, sizeof sp);
    sp.pattern = pattern;
    sp.suite = suite;
    sp.recipient_pub = rcpt->pub;
    sp.sender = ng_pattern_base(pattern) != NG_PATTERN_N ? snd : NULL;
    sp.psk = ng_pattern_has_psk(pattern) ? fuzz_psk : NULL;
    sp.meta = (const uint8_t *)meta;
    sp.meta_len = sizeof meta - 1;
    sp.body = body;
    sp.body_len = body_len;
    sp.created_ms = created_ms;
    sp.ttl_ms = ttl_ms;
    sp.message_id = message_id;
    sp.max_chunk = max_chunk;
    err = ng_parcel_seal(out, MAX_PARCEL, &len, &sp);
    if (err)
        die("seal", ng_strerror(err));

    ng_open_params_init(&op);
    op.recipient = rcpt;
    op.sender_pub = ng_pattern_base(pattern) == NG_PATTERN_K ? snd->pub : NULL;
    op.psk = sp.psk;
    op.ignore_expiry = 1;
    err = ng_parcel_open(plain, sizeof plain, &o, out, len, &op);
    if (err)
        die("open of a fresh seed", ng_strerror(err));
    if (o.body_len != body_len || (body_len > 0 && memcmp(o.body, body, body_len) != 0))
        die("open of a fresh seed", "body differs");
    return len;
}

/*
 * An authentic N parcel, one handshake message, around a plaintext that
 * breaks the prefix rules. The AEAD means only a sender can make one, so
 * without such seeds the fuzzer never reaches open's checks after decryption,
 * nor its wipe of a buffer that already holds plaintext. Sealed normally
 * first (for a header and a message of the right size), then the handshake
 * message is rewritten over the given plaintext with the internal Noise API.
 */
static size_t
seal_plaintext(uint8_t *out, const uint8_t *plain, size_t plain_len, const ng_keypair *rcpt, const ng_keypair *snd)
{
    const size_t head = NG_PARCEL_PREFIX_BYTES + sizeof meta - 1;
    ng_noise_params np;
    ng_cipher_state c1;
    size_t len;
    ng_err err;

    if (plain_len < head)
        die("seal_plaintext", "plaintext shorter than the prefix and meta");
    len = seal(out, NG_PATTERN_N, NG_SUITE_CHACHAPOLY_BLAKE2B, plain_len - head, 0, rcpt, snd);
    memset(&np, 0, sizeof np);
    np.pattern = NG_PATTERN_N;
    np.suite = NG_SUITE_CHACHAPOLY_BLAKE2B;
    np.prologue = out;
    np.prologue_len = NG_PARCEL_HEADER_BYTES;
    np.remote_pub = rcpt->pub;
    err = ng_noise_write(&np, out + NG_PARCEL_HEADER_BYTES + 2, plain, plain_len, &c1, NULL);
    ng_cipher_wipe(&c1);
    if (err)
        die("seal_plaintext", ng_strerror(err));
    return len;
}

int
main(int argc, char **argv)
{
    static const ng_pattern patterns[] = {NG_PATTERN_N,     NG_PATTERN_K,     NG_PATTERN_X,
                                          NG_PATTERN_NPSK0, NG_PATTERN_KPSK0, NG_PATTERN_XPSK1};
    static const ng_suite two_suites[] = {NG_SUITE_CHACHAPOLY_BLAKE2B, NG_SUITE_AESGCM_SHA256};
    /* Several transport messages, including a split inside meta (max_chunk 16). */
    static const struct {
        ng_pattern pattern;
        ng_suite suite;
        size_t body_len, max_chunk;
    } multi[] = {
        {NG_PATTERN_N, NG_SUITE_CHACHAPOLY_BLAKE2B, 300, 64},
        {NG_PATTERN_XPSK1, NG_SUITE_AESGCM_SHA256, 300, 64},
        {NG_PATTERN_K, NG_SUITE_CHACHAPOLY_SHA256, 40, 16},
    };
    uint8_t parcel[MAX_PARCEL + 1], plain[64];
    char name[128], dir[2][400];
    ng_keypair rcpt, snd, other;
    size_t i, j, len;

    if (argc != 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR (writes CORPUS_DIR/parcel_open and CORPUS_DIR/parcel_inspect)\n",
                argv[0]);
        return 2;
    }
    if (randombytes_set_implementation(&rng_impl) != 0 || sodium_init() < 0)
        die("libsodium", "initialisation failed");
    if (ng_keypair_from_private(&rcpt, fuzz_recipient_priv) != NG_OK ||
        ng_keypair_from_private(&snd, fuzz_sender_priv) != NG_OK)
        die("keys", "degenerate fixed key");
    if (!ng_suite_available(NG_SUITE_AESGCM_SHA256))
        die("AESGCM", "not available on this CPU; the corpus needs it");

    make_dir(argv[1]);
    if ((size_t)snprintf(dir[0], sizeof dir[0], "%s/parcel_open", argv[1]) >= sizeof dir[0] ||
        (size_t)snprintf(dir[1], sizeof dir[1], "%s/parcel_inspect", argv[1]) >= sizeof dir[1])
        die(argv[1], "path too long");
    for (i = 0; i < 2; i++) {
        make_dir(dir[i]);
        out_dirs[i] = dir[i];
    }

    /* Every pattern in the default suite and in AESGCM_SHA256, bodies of 0 and 1 bytes. */
    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        for (j = 0; j < sizeof two_suites / sizeof two_suites[0]; j++) {
            size_t body_len;
            for (body_len = 0; body_len <= 1; body_len++) {
                len = seal(parcel, patterns[i], two_suites[j], body_len, 0, &rcpt, &snd);
                snprintf(name, sizeof name, "%s_%s_b%zu", ng_pattern_name(patterns[i]),
                         ng_suite_name(two_suites[j]) + 6, body_len);
                write_seed(name, parcel, len);
            }
        }
    }
    /* A 100-byte body for every pattern, each in another suite, so all six suites open. */
    for (i = 0; i < sizeof patterns / sizeof patterns[0]; i++) {
        ng_suite suite = (ng_suite)(NG_SUITE_CHACHAPOLY_BLAKE2B + i);
        len = seal(parcel, patterns[i], suite, 100, 0, &rcpt, &snd);
        snprintf(name, sizeof name, "%s_%s_b100", ng_pattern_name(patterns[i]), ng_suite_name(suite) + 6);
        write_seed(name, parcel, len);
    }
    for (i = 0; i < sizeof multi / sizeof multi[0]; i++) {
        len = seal(parcel, multi[i].pattern, multi[i].suite, multi[i].body_len, multi[i].max_chunk, &rcpt, &snd);
        snprintf(name, sizeof name, "%s_%s_b%zu_chunk%zu", ng_pattern_name(multi[i].pattern),
                 ng_suite_name(multi[i].suite) + 6, multi[i].body_len, multi[i].max_chunk);
        write_seed(name, parcel, len);
    }

    /* X from a sender the target does not know: opens anonymously, is refused
     * (after decryption) once the fixed sender is named. */
    ng_keypair_generate(&other);
    len = seal(parcel, NG_PATTERN_X, NG_SUITE_CHACHAPOLY_BLAKE2B, 1, 0, &rcpt, &other);
    write_seed("X_other_sender_ChaChaPoly_BLAKE2b_b1", parcel, len);

    /* Authentic, but the plaintext is wrong: version 2; meta_len one past the end. */
    memset(plain, 0, sizeof plain);
    memcpy(plain + NG_PARCEL_PREFIX_BYTES, meta, sizeof meta - 1);
    plain[0] = 2;
    plain[2] = (uint8_t)(sizeof meta - 1);
    len = seal_plaintext(parcel, plain, NG_PARCEL_PREFIX_BYTES + sizeof meta - 1 + 1, &rcpt, &snd);
    write_seed("authentic_bad_version", parcel, len);
    plain[0] = NG_PARCEL_VERSION;
    plain[2] = (uint8_t)(sizeof meta - 1 + 2);
    len = seal_plaintext(parcel, plain, NG_PARCEL_PREFIX_BYTES + sizeof meta - 1 + 1, &rcpt, &snd);
    write_seed("authentic_meta_len_past_end", parcel, len);

    /* Malformed, from a valid N parcel: cut short, wrong magic, one byte too many. */
    len = seal(parcel, NG_PATTERN_N, NG_SUITE_CHACHAPOLY_BLAKE2B, 1, 0, &rcpt, &snd);
    write_seed("bad_truncated", parcel, len - 10);
    parcel[len] = 0x00;
    write_seed("bad_trailing_byte", parcel, len + 1);
    parcel[3] = '2';
    write_seed("bad_magic", parcel, len);

    ng_keypair_wipe(&rcpt);
    ng_keypair_wipe(&snd);
    ng_keypair_wipe(&other);
    printf("gen_corpus: %u seeds, %zu bytes, in %s and %s\n", n_written, bytes_written, dir[0], dir[1]);
    return 0;
}

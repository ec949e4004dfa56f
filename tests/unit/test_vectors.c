/*
 * Runs every vector in ../shared/vectors (or $NG_VECTORS_DIR) through the
 * one-way handshake: the initiator must produce the handshake message and
 * every transport message byte for byte, the responder must read them back,
 * and both must reach the handshake hash where the vector gives one. A
 * failure names the protocol and the source file of the vector.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "ng_hex.h"
#include "ng_noise.h"

enum { MAX_MSG = 1024 };

struct hexbuf {
    uint8_t b[MAX_MSG];
    size_t len;
};

static int
get_hex(json_t *obj, const char *field, struct hexbuf *out)
{
    json_t *v = json_object_get(obj, field);
    const char *s;
    size_t n;

    out->len = 0;
    if (!json_is_string(v))
        return 0;
    s = json_string_value(v);
    n = strlen(s);
    if (n % 2 != 0 || n / 2 > sizeof out->b || ng_hex_decode(out->b, n / 2, s, n) != NG_OK)
        return -1;
    out->len = n / 2;
    return 1;
}

struct counts {
    int run, failed, skipped;
};

static void
fail_vector(struct counts *c, const char *name, const char *source, const char *what, int index)
{
    c->failed++;
    print_error("vector %s (%s): %s", name, source, what);
    if (index >= 0)
        print_error(" at message %d", index);
    print_error("\n");
}

static void
run_vector(json_t *v, struct counts *c)
{
    const char *name = json_string_value(json_object_get(v, "protocol_name"));
    const char *source = json_string_value(json_object_get(v, "source"));
    struct hexbuf prologue, init_static, resp_static, eph, remote_static, hhash, psk, payload, ct;
    json_t *messages = json_object_get(v, "messages");
    json_t *psks = json_object_get(v, "init_psks");
    ng_pattern pattern;
    ng_suite suite;
    ng_keypair ikey, rkey;
    ng_cipher_state ic1, rc1;
    ng_noise_params ip, rp;
    uint8_t msg[MAX_MSG + 128], plain[MAX_MSG], ih[NG_HASH_MAX_BYTES], rh[NG_HASH_MAX_BYTES];
    uint8_t learned[NG_KEY_BYTES];
    size_t i, mlen;

    if (name == NULL || source == NULL || !json_is_array(messages) || json_array_size(messages) == 0) {
        fail_vector(c, name ? name : "?", source ? source : "?", "malformed vector entry", -1);
        return;
    }
    if (ng_protocol_parse(name, &pattern, &suite) != NG_OK) {
        fail_vector(c, name, source, "unknown protocol name", -1);
        return;
    }
    if (!ng_suite_available(suite)) {
        c->skipped++;
        return;
    }
    c->run++;
    if (get_hex(v, "init_prologue", &prologue) < 0 || get_hex(v, "resp_static", &resp_static) != 1 ||
        get_hex(v, "init_ephemeral", &eph) != 1 || get_hex(v, "init_remote_static", &remote_static) != 1 ||
        get_hex(v, "init_static", &init_static) < 0 || get_hex(v, "handshake_hash", &hhash) < 0) {
        fail_vector(c, name, source, "bad hex field", -1);
        return;
    }
    psk.len = 0;
    if (json_array_size(psks) == 1) {
        const char *s = json_string_value(json_array_get(psks, 0));
        if (s == NULL || ng_hex_decode(psk.b, 32, s, strlen(s)) != NG_OK) {
            fail_vector(c, name, source, "bad psk", -1);
            return;
        }
        psk.len = 32;
    }

    if (ng_keypair_from_private(&rkey, resp_static.b) != NG_OK) {
        fail_vector(c, name, source, "bad responder key", -1);
        return;
    }
    if (memcmp(rkey.pub, remote_static.b, 32) != 0) {
        fail_vector(c, name, source, "init_remote_static is not resp_static's public key", -1);
        return;
    }
    memset(&ikey, 0, sizeof ikey);
    if (init_static.len == 32 && ng_keypair_from_private(&ikey, init_static.b) != NG_OK) {
        fail_vector(c, name, source, "bad initiator key", -1);
        return;
    }

    memset(&ip, 0, sizeof ip);
    ip.pattern = pattern;
    ip.suite = suite;
    ip.prologue = prologue.b;
    ip.prologue_len = prologue.len;
    ip.psk = psk.len ? psk.b : NULL;
    ip.local = &ikey;
    ip.remote_pub = rkey.pub;
    ip.fixed_ephemeral = eph.b;
    rp = ip;
    rp.local = &rkey;
    rp.remote_pub = ikey.pub; /* used for K only */
    rp.fixed_ephemeral = NULL;

    for (i = 0; i < json_array_size(messages); i++) {
        json_t *m = json_array_get(messages, i);
        if (get_hex(m, "payload", &payload) != 1 || get_hex(m, "ciphertext", &ct) != 1) {
            fail_vector(c, name, source, "bad message hex", (int)i);
            goto out;
        }
        if (i == 0) {
            mlen = ng_noise_handshake_overhead(pattern) + payload.len;
            if (ng_noise_write(&ip, msg, payload.b, payload.len, &ic1, ih) != NG_OK) {
                fail_vector(c, name, source, "initiator failed to write", 0);
                goto out;
            }
        } else {
            mlen = payload.len + NG_CIPHER_TAG_BYTES;
            if (ng_cipher_encrypt(&ic1, msg, NULL, 0, payload.b, payload.len) != NG_OK) {
                fail_vector(c, name, source, "transport encrypt failed", (int)i);
                goto out;
            }
        }
        if (mlen != ct.len || memcmp(msg, ct.b, ct.len) != 0) {
            fail_vector(c, name, source, "ciphertext differs", (int)i);
            goto out;
        }
        if (i == 0) {
            if (ng_noise_read(&rp, ct.b, ct.len, plain, &rc1, learned, rh) != NG_OK) {
                fail_vector(c, name, source, "responder failed to read", 0);
                goto out;
            }
            if (ng_pattern_base(pattern) == NG_PATTERN_X && memcmp(learned, ikey.pub, 32) != 0) {
                fail_vector(c, name, source, "responder learned the wrong static key", 0);
                goto out;
            }
            if (memcmp(ih, rh, ng_hash_len(ng_suite_hash(suite))) != 0) {
                fail_vector(c, name, source, "initiator and responder hashes differ", 0);
                goto out;
            }
            if (hhash.len != 0 &&
                (hhash.len != ng_hash_len(ng_suite_hash(suite)) || memcmp(ih, hhash.b, hhash.len) != 0)) {
                fail_vector(c, name, source, "handshake hash differs", 0);
                goto out;
            }
        } else if (ng_cipher_decrypt(&rc1, plain, NULL, 0, ct.b, ct.len) != NG_OK) {
            fail_vector(c, name, source, "transport decrypt failed", (int)i);
            goto out;
        }
        if (memcmp(plain, payload.b, payload.len) != 0) {
            fail_vector(c, name, source, "decrypted payload differs", (int)i);
            goto out;
        }
    }
out:
    ng_cipher_wipe(&ic1);
    ng_cipher_wipe(&rc1);
    ng_keypair_wipe(&ikey);
    ng_keypair_wipe(&rkey);
}

static const char *
vectors_dir(void)
{
    const char *d = getenv("NG_VECTORS_DIR");

    return d != NULL ? d : "../shared/vectors";
}

static void
run_file(const char *file, size_t expected)
{
    char path[4096];
    json_error_t jerr;
    json_t *root, *vectors;
    struct counts c = {0, 0, 0};
    size_t i;

    snprintf(path, sizeof path, "%s/%s", vectors_dir(), file);
    root = json_load_file(path, 0, &jerr);
    if (root == NULL)
        fail_msg("cannot load %s: %s (line %d)", path, jerr.text, jerr.line);
    vectors = json_object_get(root, "vectors");
    assert_true(json_is_array(vectors));
    assert_int_equal(json_array_size(vectors), expected);
    for (i = 0; i < json_array_size(vectors); i++)
        run_vector(json_array_get(vectors, i), &c);
    json_decref(root);
    print_message("%s: %d run, %d failed, %d skipped (AESGCM unavailable)\n", file, c.run, c.failed, c.skipped);
    assert_int_equal(c.failed, 0);
    assert_int_equal((size_t)(c.run + c.skipped), expected);
    assert_true(c.run > 0);
}

static void
test_cacophony(void **state)
{
    (void)state;
    run_file("cacophony-oneway.json", 36);
}

static void
test_snow(void **state)
{
    (void)state;
    run_file("snow-oneway.json", 54);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cacophony),
        cmocka_unit_test(test_snow),
    };

    if (sodium_init() < 0)
        return 1;
    return cmocka_run_group_tests_name("vectors", tests, NULL, NULL);
}

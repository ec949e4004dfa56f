#include "ng_receive.h"

#include <stdlib.h>
#include <string.h>

#include <sodium.h>

/* The tenant, pattern and sender the header promises, before any cryptography. */
static ng_err
admit(const ng_directory *d, const ng_parcel_header *h, const ng_receive_opts *o, ng_received *out,
      const ng_dir_key **key, const uint8_t **sender_pub)
{
    const ng_dir_peer_key *pk;
    ng_pattern base = ng_pattern_base(h->pattern);

    out->tenant = ng_directory_recipient(d, h->recipient_key_id, key);
    if (out->tenant == NULL)
        return NG_ERR_NOT_FOUND;
    if ((out->tenant->patterns & NG_DIR_PATTERN_BIT(h->pattern)) == 0)
        return NG_ERR_BAD_PATTERN;
    if (ng_pattern_has_psk(h->pattern) && out->tenant->psk == NULL)
        return NG_ERR_BAD_PATTERN;
    *sender_pub = NULL;
    if (base == NG_PATTERN_K) {
        out->peer = ng_directory_sender(d, out->tenant, h->sender_key_id, &pk);
        if (out->peer == NULL)
            return NG_ERR_WRONG_SENDER;
        if (o->from_peer != NULL && strcmp(out->peer->name, o->from_peer) != 0)
            return NG_ERR_WRONG_SENDER;
        *sender_pub = pk->pub;
    }
    return NG_OK;
}

/* X reveals its sender only once opened: it must be a peer's key (that peer's, if fetched from one). */
static ng_err
check_x_sender(const ng_directory *d, const ng_opened *op, const ng_receive_opts *o, ng_received *out)
{
    uint8_t id[NG_KEY_ID_BYTES];

    if (!op->has_sender)
        return NG_ERR_WRONG_SENDER;
    ng_key_id(id, op->sender_pub);
    out->peer = ng_directory_sender(d, out->tenant, id, NULL);
    if (out->peer == NULL)
        return NG_ERR_WRONG_SENDER;
    if (o->from_peer != NULL && strcmp(out->peer->name, o->from_peer) != 0)
        return NG_ERR_WRONG_SENDER;
    return NG_OK;
}

/* The recipient's rules of time, as o sets them. */
static void
time_params(ng_open_params *p, const ng_receive_opts *o)
{
    ng_open_params_init(p);
    p->now_ms = o->now_ms;
    p->skew_ms = o->skew_ms;
    p->max_lifetime_ms = o->max_lifetime_ms;
    p->ignore_expiry = o->ignore_expiry;
}

ng_err
ng_receive_check_time(const ng_parcel_header *h, const ng_receive_opts *o)
{
    ng_open_params p;

    time_params(&p, o);
    return ng_parcel_check_time(h, &p);
}

ng_err
ng_receive_open(const ng_directory *d, const uint8_t *parcel, size_t len, const ng_receive_opts *o, ng_received *out,
                ng_opened *opened, uint8_t **plain, size_t *plain_len)
{
    const uint8_t *sender_pub;
    const ng_dir_key *key;
    ng_open_params p;
    uint8_t *buf;
    ng_err err;

    memset(out, 0, sizeof *out);
    memset(opened, 0, sizeof *opened);
    *plain = NULL;
    *plain_len = 0;
    err = ng_parcel_inspect(&out->header, parcel, len, o->max_bytes);
    if (err)
        return err;
    err = admit(d, &out->header, o, out, &key, &sender_pub);
    if (err)
        return err;
    if (key->kp == NULL)
        return NG_ERR_KEY_ELSEWHERE;
    time_params(&p, o);
    p.recipient = key->kp;
    p.sender_pub = sender_pub;
    p.psk = ng_pattern_has_psk(out->header.pattern) ? out->tenant->psk : NULL;
    p.max_bytes = o->max_bytes;
    p.cache = o->cache;
    buf = malloc(out->header.plaintext_len > 0 ? out->header.plaintext_len : 1);
    if (buf == NULL)
        return NG_ERR_NOMEM;
    err = ng_parcel_open(buf, out->header.plaintext_len, opened, parcel, len, &p);
    if (err == NG_OK && ng_pattern_base(out->header.pattern) == NG_PATTERN_X)
        err = check_x_sender(d, opened, o, out);
    if (err) {
        sodium_memzero(buf, out->header.plaintext_len);
        free(buf);
        memset(opened, 0, sizeof *opened);
        return err;
    }
    *plain = buf;
    *plain_len = out->header.plaintext_len;
    return NG_OK;
}

ng_err
ng_receive_inspect(const ng_directory *d, const uint8_t *parcel, size_t len, const ng_receive_opts *o, ng_received *out)
{
    const uint8_t *sender_pub;
    const ng_dir_key *key;
    ng_err err;

    memset(out, 0, sizeof *out);
    err = ng_parcel_inspect(&out->header, parcel, len, o->max_bytes);
    if (err == NG_OK)
        err = admit(d, &out->header, o, out, &key, &sender_pub);
    return err != NG_OK ? err : ng_receive_check_time(&out->header, o);
}

ng_err
ng_receive_check(const ng_directory *d, const uint8_t *parcel, size_t len, const ng_receive_opts *o, ng_received *out)
{
    ng_opened opened;
    uint8_t *plain;
    size_t plain_len;
    ng_err err = ng_receive_open(d, parcel, len, o, out, &opened, &plain, &plain_len);

    /*
     * Only the backend can open it: take it in on what its header shows (read
     * and admitted already, out filled), and let the backend check the rest.
     */
    if (err == NG_ERR_KEY_ELSEWHERE)
        return ng_receive_check_time(&out->header, o);
    if (err == NG_OK) {
        sodium_memzero(plain, plain_len);
        free(plain);
        sodium_memzero(&opened, sizeof opened);
    }
    return err;
}

const char *
ng_receive_reason(ng_err err)
{
    switch (err) {
    case NG_ERR_NOT_FOUND: return "unknown_recipient";
    case NG_ERR_WRONG_RECIPIENT: return "unknown_recipient";
    case NG_ERR_BAD_PATTERN: return "pattern";
    case NG_ERR_WRONG_SENDER:
    case NG_ERR_SENDER_REQUIRED:
    case NG_ERR_BAD_KEY: return "sender";
    case NG_ERR_PSK_REQUIRED: return "psk";
    case NG_ERR_AUTH: return "auth";
    case NG_ERR_EXPIRED: return "expired";
    case NG_ERR_NOT_YET_VALID: return "not_yet_valid";
    case NG_ERR_LIFETIME: return "lifetime";
    case NG_ERR_TOO_LARGE: return "too_large";
    case NG_ERR_EXISTS: return "replayed";
    case NG_ERR_NOMEM: return "no_memory";
    case NG_ERR_KEY_ELSEWHERE: return "key_elsewhere";
    default: return "malformed";
    }
}

ng_err
ng_receive_record(uint8_t **out, size_t *len, const char *peer, const uint8_t *parcel, size_t parcel_len)
{
    size_t plen = strlen(peer);
    uint8_t *rec;

    *out = NULL;
    *len = 0;
    if (plen >= NG_RECEIVE_PEER_BYTES || parcel_len == 0)
        return NG_ERR_INVALID_ARG;
    rec = malloc(2 + plen + parcel_len);
    if (rec == NULL)
        return NG_ERR_NOMEM;
    rec[0] = 1;
    rec[1] = (uint8_t)plen;
    memcpy(rec + 2, peer, plen);
    memcpy(rec + 2 + plen, parcel, parcel_len);
    *out = rec;
    *len = 2 + plen + parcel_len;
    return NG_OK;
}

ng_err
ng_receive_unrecord(const uint8_t *rec, size_t len, char peer[NG_RECEIVE_PEER_BYTES], const uint8_t **parcel,
                    size_t *parcel_len)
{
    size_t plen;

    peer[0] = '\0';
    if (len < 2 || rec[0] != 1)
        return NG_ERR_MALFORMED;
    plen = rec[1];
    if (plen >= NG_RECEIVE_PEER_BYTES || len <= 2 + plen || memchr(rec + 2, '\0', plen) != NULL)
        return NG_ERR_MALFORMED;
    memcpy(peer, rec + 2, plen);
    peer[plen] = '\0';
    *parcel = rec + 2 + plen;
    *parcel_len = len - 2 - plen;
    return NG_OK;
}

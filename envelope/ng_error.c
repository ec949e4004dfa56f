#include "ng_error.h"

const char *
ng_strerror(ng_err err)
{
    switch (err) {
    case NG_OK: return "ok";
    case NG_ERR_INVALID_ARG: return "invalid argument";
    case NG_ERR_NOMEM: return "out of memory";
    case NG_ERR_UNSUPPORTED: return "not supported on this machine (AESGCM needs AES-NI and PCLMUL)";
    case NG_ERR_TOO_LARGE: return "too large";
    case NG_ERR_BUFFER_TOO_SMALL: return "output buffer too small";
    case NG_ERR_MALFORMED: return "malformed parcel";
    case NG_ERR_BAD_MAGIC: return "not a parcel (bad magic)";
    case NG_ERR_BAD_PATTERN: return "unknown pattern";
    case NG_ERR_BAD_SUITE: return "unknown suite";
    case NG_ERR_BAD_FLAGS: return "unsupported flags";
    case NG_ERR_AUTH: return "authentication failed";
    case NG_ERR_EXPIRED: return "parcel expired";
    case NG_ERR_NOT_YET_VALID: return "parcel created in the future";
    case NG_ERR_LIFETIME: return "parcel lifetime over the allowed maximum";
    case NG_ERR_WRONG_RECIPIENT: return "parcel is addressed to another key";
    case NG_ERR_WRONG_SENDER: return "parcel is from an unexpected sender";
    case NG_ERR_SENDER_REQUIRED: return "sender public key required for this pattern";
    case NG_ERR_PSK_REQUIRED: return "pre-shared key missing or not used";
    case NG_ERR_BAD_KEY: return "bad public key (all-zero DH result)";
    case NG_ERR_NONCE_EXHAUSTED: return "nonce exhausted";
    case NG_ERR_BAD_VERSION: return "unsupported plaintext version";
    case NG_ERR_IO: return "I/O error";
    case NG_ERR_PARSE: return "does not parse";
    case NG_ERR_EXISTS: return "already exists";
    case NG_ERR_VAULT_KEY: return "wrong master key or passphrase for this vault";
    case NG_ERR_CORRUPT: return "integrity check failed (corrupted or tampered)";
    case NG_ERR_NOT_FOUND: return "not found";
    case NG_ERR_UNAVAILABLE: return "store unavailable";
    case NG_ERR_CONFLICT: return "changed concurrently; try again";
    case NG_ERR_KEY_ELSEWHERE: return "the private key is held by the tenant's backend";
    case NG_ERR__COUNT: break;
    }
    return "unknown error";
}

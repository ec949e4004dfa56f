/*
 * ng_envelope.h: the public interface of libnoisegate-envelope, Noise
 * one-way envelopes (N, K, X, Npsk0, Kpsk0, Xpsk1) in the parcel format of
 * noisegate. Link with `pkg-config --libs noisegate-envelope`.
 *
 * Call sodium_init() once before anything else.
 */
#ifndef NG_ENVELOPE_H
#define NG_ENVELOPE_H

#include "ng_error.h"
#include "ng_hex.h"
#include "ng_key.h"
#include "ng_parcel.h"
#include "ng_sscache.h"
#include "ng_suite.h"

#endif

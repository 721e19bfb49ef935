/*
 * token_bucket_pb.h: envoy.type.v3.TokenBucket -> struct mp_token_bucket,
 * with Envoy's validation rules.
 */
#ifndef MP_TOKEN_BUCKET_PB_H
#define MP_TOKEN_BUCKET_PB_H

#include "envoy/type/v3/token_bucket.pb-c.h"
#include "token_bucket.h"

/**
 * Initialises b (full) from pb: max_tokens (> 0), tokens_per_fill (default 1,
 * > 0 when set), fill_interval (required, > 0). clock / clock_arg as for
 * mp_token_bucket_init (NULL: CLOCK_MONOTONIC). Returns 0, or MP_ERR_INVAL
 * with *err naming the field ("max_tokens: must be greater than 0"); the
 * caller prefixes the path to the bucket. Nothing to free.
 */
int mp_token_bucket_from_proto(struct mp_token_bucket *b, const Envoy__Type__V3__TokenBucket *pb,
                               mp_token_bucket_clock_fn clock, void *clock_arg, char **err);

#endif

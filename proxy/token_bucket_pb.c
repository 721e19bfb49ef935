/*
 * token_bucket_pb.c: TokenBucket proto validation and conversion.
 */
#include "token_bucket_pb.h"

#include "mp_common.h"

int mp_token_bucket_from_proto(struct mp_token_bucket *b, const Envoy__Type__V3__TokenBucket *pb,
                               mp_token_bucket_clock_fn clock, void *clock_arg, char **err)
{
    if (pb->max_tokens == 0)
        return mp_set_err(err, "max_tokens: must be greater than 0");
    uint64_t per_fill = pb->tokens_per_fill ? pb->tokens_per_fill->value : 1;
    if (per_fill == 0)
        return mp_set_err(err, "tokens_per_fill: must be greater than 0");
    const Google__Protobuf__Duration *d = pb->fill_interval;
    if (!d)
        return mp_set_err(err, "fill_interval: is required");
    if (d->seconds < 0 || d->nanos < 0 || d->nanos > 999999999 ||
        (uint64_t)d->seconds > UINT64_MAX / 1000000000u - 1)
        return mp_set_err(err, "fill_interval: invalid duration");
    uint64_t ns = (uint64_t)d->seconds * 1000000000u + (uint64_t)d->nanos;
    if (ns == 0)
        return mp_set_err(err, "fill_interval: must be greater than 0");
    if (mp_token_bucket_init(b, pb->max_tokens, per_fill, ns, clock, clock_arg) < 0)
        return mp_set_err(err, "token bucket: invalid parameters");
    return 0;
}

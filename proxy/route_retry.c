/* route_retry.c: retry_on names (Envoy's RetryStateImpl::parseRetryOn and
 * parseRetryGrpcOn, merged: a route's retry_on carries both kinds). */
#include "proxy/route_retry.h"

#include <string.h>

static const struct {
    const char *name;
    uint32_t bit;
} names[] = {
    {"5xx", MP_RETRY_ON_5XX},
    {"gateway-error", MP_RETRY_ON_GATEWAY_ERROR},
    {"reset", MP_RETRY_ON_RESET},
    {"connect-failure", MP_RETRY_ON_CONNECT_FAILURE},
    {"retriable-4xx", MP_RETRY_ON_RETRIABLE_4XX},
    {"refused-stream", MP_RETRY_ON_REFUSED_STREAM},
    {"retriable-status-codes", MP_RETRY_ON_RETRIABLE_STATUS_CODES},
    {"retriable-headers", MP_RETRY_ON_RETRIABLE_HEADERS},
    {"envoy-ratelimited", MP_RETRY_ON_ENVOY_RATELIMITED},
    {"reset-before-request", MP_RETRY_ON_RESET_BEFORE_REQUEST},
    {"http3-post-connect-failure", MP_RETRY_ON_HTTP3_POST_CONNECT_FAILURE},
    {"cancelled", MP_RETRY_ON_GRPC_CANCELLED},
    {"deadline-exceeded", MP_RETRY_ON_GRPC_DEADLINE_EXCEEDED},
    {"resource-exhausted", MP_RETRY_ON_GRPC_RESOURCE_EXHAUSTED},
    {"unavailable", MP_RETRY_ON_GRPC_UNAVAILABLE},
    {"internal", MP_RETRY_ON_GRPC_INTERNAL},
};

uint32_t mp_retry_on_parse(const char *s, size_t len, bool *all_known)
{
    uint32_t bits = 0;
    bool known = true;
    size_t i = 0;
    while (s != NULL && i < len) {
        size_t start = i;
        while (i < len && s[i] != ',')
            i++;
        size_t end = i++;
        while (start < end && (s[start] == ' ' || s[start] == '\t'))
            start++;
        while (end > start && (s[end - 1] == ' ' || s[end - 1] == '\t'))
            end--;
        if (end == start)
            continue;
        bool found = false;
        for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
            if (strlen(names[k].name) == end - start &&
                memcmp(names[k].name, s + start, end - start) == 0) {
                bits |= names[k].bit;
                found = true;
                break;
            }
        }
        known = known && found;
    }
    if (all_known != NULL)
        *all_known = known;
    return bits;
}

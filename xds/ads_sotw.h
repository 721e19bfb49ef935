/*
 * ads_sotw.h: state-of-the-world xDS (DiscoveryRequest/DiscoveryResponse)
 * on top of the session bookkeeping of ads_session_int.h.
 */
#ifndef MP_ADS_SOTW_H
#define MP_ADS_SOTW_H

#include "ads_session_int.h"

/**
 * Queues a DiscoveryRequest for t: accepted version_info, t's names (none
 * for a wildcard type), the stream's last nonce of t, the node when it has
 * not gone out on this stream, and error_detail (code 3, message error)
 * when error is not NULL (a NACK). Returns 0 or MP_ERR_NOMEM.
 */
int mp_ads_sotw_request(struct mp_ads_session *s, struct ads_type *t, const char *error);

/**
 * Handles one serialized DiscoveryResponse (see mp_ads_session_on_message).
 * Returns 0, MP_ERR_NOMEM or MP_ERR_PROTO.
 */
int mp_ads_sotw_on_message(struct mp_ads_session *s, const uint8_t *buf, size_t len);

#endif

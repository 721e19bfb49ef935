/*
 * ads_delta.h: incremental xDS (DeltaDiscoveryRequest/Response) on top of
 * the session bookkeeping of ads_session_int.h.
 */
#ifndef MP_ADS_DELTA_H
#define MP_ADS_DELTA_H

#include "ads_session_int.h"

/**
 * Queues a DeltaDiscoveryRequest for t. The first one of a stream carries
 * initial_resource_versions and every wanted name (none for a wildcard
 * type: the legacy wildcard form); later ones carry the difference between
 * the wanted names and what the server was told. nonce (ACK/NACK of that
 * response) and error (NACK, code 3) may be NULL. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_ads_delta_request(struct mp_ads_session *s, struct ads_type *t, const char *nonce,
                         const char *error);

/**
 * Handles one serialized DeltaDiscoveryResponse (see
 * mp_ads_session_on_message). Returns 0, MP_ERR_NOMEM or MP_ERR_PROTO.
 */
int mp_ads_delta_on_message(struct mp_ads_session *s, const uint8_t *buf, size_t len);

#endif

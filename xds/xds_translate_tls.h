/*
 * xds_translate_tls.h: TLS transport socket protos -> struct mp_tls_config,
 * and SDS Secret -> struct mp_tls_secret (see proxy/tls_config.h).
 *
 * Supported: tls_params (versions 1.0-1.3, cipher_suites, ecdh_curves,
 * signature_algorithms), tls_certificates (certificate_chain, private_key,
 * password from filename / inline_bytes / inline_string / environment_variable),
 * tls_certificate_sds_secret_configs, validation_context (trusted_ca, crl,
 * match_typed_subject_alt_names, deprecated match_subject_alt_names,
 * verify_certificate_hash/spki, allow_expired_certificate,
 * trust_chain_verification, max_verify_depth), validation_context_sds_secret_config,
 * combined_validation_context, alpn_protocols, sni, require_client_certificate,
 * session tickets / cache / timeout / ticket keys, max_session_keys.
 * Refused with an error: pkcs12, private_key_provider, custom_validator_config,
 * certificate providers, custom_handshaker, OTHER_NAME SAN matchers, custom
 * string matchers. Errors carry the field path, e.g.
 * `common_tls_context.tls_certificates[0].private_key: cannot read file "/x": No such file or
 * directory`.
 */
#ifndef MP_XDS_TRANSLATE_TLS_H
#define MP_XDS_TRANSLATE_TLS_H

#include "envoy/extensions/transport_sockets/tls/v3/secret.pb-c.h"
#include "envoy/extensions/transport_sockets/tls/v3/tls.pb-c.h"
#include "proxy/tls_config.h"

/* Type URLs of the messages translated here (for TransportSocket.typed_config). */
#define MP_TLS_DOWNSTREAM_TYPE_URL                                                                 \
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext"
#define MP_TLS_UPSTREAM_TYPE_URL                                                                   \
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext"
#define MP_TLS_SECRET_TYPE_URL                                                                     \
    "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret"

/**
 * Translates a DownstreamTlsContext (server side). Files named by the config
 * are read now. Returns 0 and *out (one reference, release with
 * mp_tls_config_unref), or a negative MP_ERR_* with *err set to a message that
 * starts with the field path inside the message (the caller prefixes where
 * the message sits, e.g. "filter_chains[0].transport_socket.typed_config").
 */
int mp_xds_translate_downstream_tls(
    const Envoy__Extensions__TransportSockets__Tls__V3__DownstreamTlsContext *pb,
    struct mp_tls_config **out, char **err);

/** Like mp_xds_translate_downstream_tls, for an UpstreamTlsContext (client side). */
int mp_xds_translate_upstream_tls(
    const Envoy__Extensions__TransportSockets__Tls__V3__UpstreamTlsContext *pb,
    struct mp_tls_config **out, char **err);

/**
 * Unpacks a TransportSocket typed_config Any (DownstreamTlsContext when side
 * is MP_TLS_SERVER, UpstreamTlsContext when MP_TLS_CLIENT) and translates it.
 * Returns as above; a wrong type_url or undecodable bytes is MP_ERR_INVAL.
 */
int mp_xds_translate_tls_any(const char *type_url, const uint8_t *value, size_t len,
                             enum mp_tls_side side, struct mp_tls_config **out, char **err);

/**
 * Translates a TransportSocket (a filter chain's or a cluster's): name
 * "envoy.transport_sockets.tls" (or a typed_config of the TLS context type)
 * gives a config for side; "envoy.transport_sockets.raw_buffer", or ts NULL,
 * gives *out = NULL (plaintext) and returns 0. Other transport sockets are
 * MP_ERR_UNSUPPORTED with *err naming them. Errors are prefixed with
 * "typed_config" where they come from the TLS context.
 */
int mp_xds_translate_transport_socket(const Envoy__Config__Core__V3__TransportSocket *ts,
                                      enum mp_tls_side side, struct mp_tls_config **out,
                                      char **err);

/**
 * Translates a Secret (SDS resource, or bootstrap static secret): a
 * tls_certificate, validation_context, session_ticket_keys or generic_secret.
 * Returns 0 and *out (one reference, mp_tls_secret_unref) or a negative
 * MP_ERR_* with *err carrying the field path ("tls_certificate.private_key: ...").
 */
int mp_xds_translate_secret(const Envoy__Extensions__TransportSockets__Tls__V3__Secret *pb,
                            struct mp_tls_secret **out, char **err);

#endif

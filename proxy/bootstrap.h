/*
 * bootstrap.h: load, merge and check an Envoy v3 Bootstrap.
 */
#ifndef MP_BOOTSTRAP_H
#define MP_BOOTSTRAP_H

#include <stddef.h>

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"

struct mp_options;

/* Flags for loading. */
enum {
    MP_BOOTSTRAP_ALLOW_UNKNOWN = 1u << 0, /* --allow-unknown-static-fields */
};

/**
 * Reads a Bootstrap from path: ".pb" is binary protobuf, ".json" is JSON,
 * anything else (".yaml", ".yml") is YAML. On success stores the message in
 * *out (free with mp_bootstrap_free) and returns 0. On failure returns
 * MP_ERR_IO / MP_ERR_PARSE / MP_ERR_INVAL / MP_ERR_NOMEM with a malloc'd
 * message in *err naming the field path.
 */
int mp_bootstrap_load_file(const char *path, unsigned flags,
                           Envoy__Config__Bootstrap__V3__Bootstrap **out, char **err);

/**
 * Parses YAML (or JSON, which YAML reads too) text into a Bootstrap. Same
 * returns and ownership as mp_bootstrap_load_file.
 */
int mp_bootstrap_load_yaml(const char *text, size_t len, unsigned flags,
                           Envoy__Config__Bootstrap__V3__Bootstrap **out, char **err);

/**
 * Merges src into *dst with protobuf MergeFrom semantics (Envoy's rule for
 * --config-yaml): set scalars replace, messages merge field by field,
 * repeated fields append, map entries replace by key, a oneof member
 * replaces the other. *dst is merged in place (the pointer stays); src is
 * not changed. Returns 0 or MP_ERR_NOMEM with *err (*dst stays freeable).
 */
int mp_bootstrap_merge(Envoy__Config__Bootstrap__V3__Bootstrap **dst,
                       const Envoy__Config__Bootstrap__V3__Bootstrap *src, char **err);

/**
 * Everything the command line asks for: loads opts->config_path (if any),
 * merges opts->config_yaml (if any) over it, and applies --service-node,
 * --service-cluster and --service-zone to node (the flags win, as in Envoy).
 * Fails when neither a path nor YAML is given. Same returns as
 * mp_bootstrap_load_file.
 */
int mp_bootstrap_from_options(const struct mp_options *opts,
                              Envoy__Config__Bootstrap__V3__Bootstrap **out, char **err);

/**
 * Cheap, certain semantic checks an Envoy user expects from --mode validate:
 * unnamed or duplicate clusters, duplicate listener names, listeners without
 * an address, xDS config sources (ads_config, lds/cds api_config_source)
 * naming a cluster that is not a static cluster, `ads: {}` without ads_config,
 * EDS clusters without an eds_config,
 * and, when there is no CDS, routes and tcp_proxy naming clusters that do not
 * exist. Returns 0 or MP_ERR_INVAL with a malloc'd message in *err that
 * names the field path ("static_resources.clusters[3].name: duplicate
 * cluster name \"x\"").
 */
int mp_bootstrap_validate(const Envoy__Config__Bootstrap__V3__Bootstrap *bootstrap, char **err);

/** Frees a Bootstrap from this module. NULL is allowed. */
void mp_bootstrap_free(Envoy__Config__Bootstrap__V3__Bootstrap *bootstrap);

#endif

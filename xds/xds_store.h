/*
 * xds_store.h: the resources the xDS client has accepted, their warming, and
 * the snapshots built from them.
 *
 * The store is the consumer behind the xDS client's watcher: every update is
 * decoded and translated here, on the grpc thread, never on a worker or the
 * main thread (a 10,000-cluster push must not stall traffic or admin). An
 * update is all or nothing: if one resource fails to translate, nothing of
 * the update is kept and the error names the resource and the field (the
 * client NACKs with it).
 *
 * Warming follows Envoy's make-before-break order: an EDS cluster becomes
 * active only once its ClusterLoadAssignment has arrived, a listener only
 * once every RouteConfiguration its HCMs name by RDS has arrived; until then
 * the previous version (if any) stays in force. Every build contains the
 * bootstrap's static clusters and listeners, then the active dynamic ones.
 *
 * Not thread-safe: one thread (the grpc thread) uses a store.
 */
#ifndef MP_XDS_STORE_H
#define MP_XDS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xds_client.h"

struct mp_snapshot;
struct mp_tls_secret;
struct mp_xds_store;

/** What a store serves: which types the bootstrap subscribes. */
struct mp_xds_store_config {
    /* Static resources carried into every build: the clusters (with their
     * endpoints) and listeners of this snapshot. The store takes its own
     * references; NULL = none. */
    struct mp_snapshot *base;
    bool want_cds; /* dynamic_resources.cds_config set */
    bool want_lds; /* dynamic_resources.lds_config set */
};

/**
 * Makes a store. *out is freed with mp_xds_store_free. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_xds_store_new(const struct mp_xds_store_config *cfg, struct mp_xds_store **out);

/** Frees the store and every reference it holds. NULL is a no-op. */
void mp_xds_store_free(struct mp_xds_store *st);

/**
 * Validates and applies one update of any type (the xDS watcher's
 * on_update). Returns 1 when what a build would contain changed, 0 when it
 * did not, or a negative MP_ERR_* with *err set (malloc'd, naming the
 * resource and the field) when the update is rejected; the store is then
 * unchanged.
 */
int mp_xds_store_apply(struct mp_xds_store *st, const struct mp_xds_update *up, char **err);

/**
 * The initial fetch of type_url timed out: initialisation stops waiting for
 * it (and for warming that depends on it), as Envoy does. Returns 1 when
 * this completes initialisation or makes warming resources active (build
 * and publish), else 0.
 */
int mp_xds_store_fetch_timeout(struct mp_xds_store *st, const char *type_url);

/**
 * True once the first complete configuration is in the store: the first CDS
 * response with all its clusters warmed, then the first LDS response with
 * all its listeners warmed (types not subscribed count as done). Stays true.
 */
bool mp_xds_store_initialized(const struct mp_xds_store *st);

/**
 * Builds a snapshot of the static and active resources. *out has one
 * reference for the caller (to hand to mp_snapshot_publish on the main
 * thread). Returns 0 or MP_ERR_NOMEM.
 */
int mp_xds_store_build(struct mp_xds_store *st, struct mp_snapshot **out);

/**
 * The SDS secret names the accepted listeners and clusters refer to whose
 * source is sds_cluster (NULL: delivered over ADS), e.g. Istio's "default"
 * and "ROOTCA" from the "sds-grpc" cluster. *names is a malloc'd array of
 * malloc'd strings (mp_xds_names_free). Returns 0 or MP_ERR_NOMEM.
 */
int mp_xds_store_secret_names(const struct mp_xds_store *st, const char *sds_cluster,
                              char ***names, size_t *n);

/**
 * The distinct SDS source clusters (non-ADS api_config_sources) referred to,
 * as for mp_xds_store_secret_names. Returns 0 or MP_ERR_NOMEM.
 */
int mp_xds_store_secret_sources(const struct mp_xds_store *st, char ***names, size_t *n);

/**
 * The ClusterLoadAssignment names the accepted EDS clusters need (active and
 * warming), and the RouteConfiguration names the accepted listeners' HCMs
 * need, for per-type (non-ADS) streams that must name them. *names as for
 * mp_xds_store_secret_names. Returns 0 or MP_ERR_NOMEM.
 */
int mp_xds_store_eds_names(const struct mp_xds_store *st, char ***names, size_t *n);
int mp_xds_store_rds_names(const struct mp_xds_store *st, char ***names, size_t *n);

/** An immutable set of secrets for the main thread's TLS context builds. */
struct mp_xds_secret_set {
    _Atomic uint32_t refs;
    size_t n;
    char **names;                  /* sorted */
    struct mp_tls_secret **secrets; /* one reference each */
};

/** A new reference to the secrets now accepted (NULL on NOMEM). */
struct mp_xds_secret_set *mp_xds_store_secrets(struct mp_xds_store *st);

/** Finds a secret by name in a set; borrowed, or NULL. */
const struct mp_tls_secret *mp_xds_secret_set_find(const struct mp_xds_secret_set *set,
                                                   const char *name);

/** Drops a reference to a set; NULL is a no-op. */
void mp_xds_secret_set_unref(struct mp_xds_secret_set *set);

/** One accepted resource as received (for /config_dump). Immutable. */
struct mp_xds_blob {
    _Atomic uint32_t refs;
    const char *type_url; /* one of the MP_XDS_TYPE_* constants */
    char *name;
    char *version;
    size_t len;
    uint8_t *data; /* the serialized resource */
    int64_t last_updated_wall_us;
};

/** An immutable list of the accepted resources, for /config_dump. */
struct mp_xds_dump {
    _Atomic uint32_t refs;
    struct mp_xds_blob **blobs; /* one reference each; grouped by type */
    bool *warming;              /* per blob: accepted, not yet active */
    size_t n;
    char *versions[5]; /* last accepted version_info: CDS, EDS, LDS, RDS, SDS */
};

/** A new reference to the list of accepted resources (NULL on NOMEM). */
struct mp_xds_dump *mp_xds_store_dump(struct mp_xds_store *st);

/** Drops a reference to a dump; NULL is a no-op. */
void mp_xds_dump_unref(struct mp_xds_dump *d);

/** Counts for logs and tests: active and warming clusters and listeners. */
struct mp_xds_store_counts {
    size_t clusters, clusters_warming, endpoints, listeners, listeners_warming, routes, secrets;
};
void mp_xds_store_counts(const struct mp_xds_store *st, struct mp_xds_store_counts *out);

#endif

/*
 * xds_store_int.h: the store's state, shared by xds_store.c (applying
 * updates, warming) and xds_store_out.c (snapshots, secrets, dumps).
 */
#ifndef MP_XDS_STORE_INT_H
#define MP_XDS_STORE_INT_H

#include "xds_map.h"
#include "xds_store.h"

struct mp_cluster;
struct mp_host_set;
struct mp_listener_config;
struct mp_route_config;

/* A secret reference found in a listener or cluster: name and source. */
struct xs_sds_ref {
    char *name;
    char *cluster; /* SDS api_config_source cluster, or NULL: over ADS */
};

struct xs_sds_refs {
    struct xs_sds_ref *v;
    size_t n;
};

/* An accepted Cluster (active or warming). */
struct xs_cluster {
    struct mp_xds_blob *blob;
    struct mp_cluster *cluster;  /* one reference */
    struct mp_host_set *dns;     /* STRICT/LOGICAL_DNS answers at acceptance, or NULL */
    struct xs_sds_refs sds;
    unsigned waived; /* 1u << XS_EDS / XS_SDS: that initial fetch timed out while this warmed */
};

/* An accepted Listener (active or warming). */
struct xs_listener {
    struct mp_xds_blob *blob;
    struct mp_listener_config *l; /* one reference */
    char **rds;                   /* route_config_names its HCMs need */
    size_t n_rds;
    struct xs_sds_refs sds;
    unsigned waived; /* 1u << XS_RDS / XS_SDS: that initial fetch timed out while this warmed */
};

/* An accepted ClusterLoadAssignment, RouteConfiguration or Secret. */
struct xs_simple {
    struct mp_xds_blob *blob;
    void *obj; /* mp_host_set / mp_route_config / mp_tls_secret: one reference */
};

struct xs_base_cluster {
    struct mp_cluster *cluster;
    struct mp_host_set *hosts;
};

struct mp_xds_store {
    struct mp_xds_store_config cfg;
    struct xs_base_cluster *base_clusters;
    size_t n_base_clusters;
    struct mp_listener_config **base_listeners;
    size_t n_base_listeners;

    struct mp_xds_map clusters;          /* name -> xs_cluster, active */
    struct mp_xds_map clusters_warming;  /* name -> xs_cluster, waiting for EDS */
    struct mp_xds_map endpoints;         /* eds name -> xs_simple(host set) */
    struct mp_xds_map listeners;         /* name -> xs_listener, active */
    struct mp_xds_map listeners_warming; /* name -> xs_listener, waiting for RDS */
    struct mp_xds_map routes;            /* name -> xs_simple(route config) */
    struct mp_xds_map secrets;           /* name -> xs_simple(secret) */

    char *versions[5]; /* per type: CDS, EDS, LDS, RDS, SDS */
    bool received[5];  /* first response (or fetch timeout) seen */
    bool initialized;
    uint64_t last_listener_id; /* mp_listener_config.config_id of the newest translation */
};

enum { XS_CDS = 0, XS_EDS, XS_LDS, XS_RDS, XS_SDS };

/**
 * Appends a copy of name to *v (*n entries, grown by doubling), for names
 * known not to be there yet: O(1), where a duplicate check would make a
 * 10,000-resource update O(n^2). Returns 0 or MP_ERR_NOMEM.
 */
int mp_xds_names_push(char ***v, size_t *n, const char *name);

/** Index of a type URL in versions/received, or -1. */
int mp_xds_store_type_index(const char *type_url);

void mp_xds_blob_unref(struct mp_xds_blob *b);
struct mp_xds_blob *mp_xds_blob_ref(struct mp_xds_blob *b);

#endif

/*
 * xds_store.h: the resources meshproxy-xds serves, loaded from a directory
 * of YAML/JSON files in Envoy's resource format (see README.md), kept as
 * serialized protobuf per type, with versions.
 *
 * A store is immutable once loaded and reference-counted: streams keep the
 * store they last sent from while a reload builds the next one.
 */
#ifndef MP_XDS_STORE_H
#define MP_XDS_STORE_H

#include <stddef.h>
#include <stdint.h>

/* One resource, serialized. */
struct mp_xds_store_res {
    char *name;
    char *version; /* hash of the bytes: the delta per-resource version */
    uint8_t *data;
    size_t len;
};

/* All resources of one type, sorted by name. */
struct mp_xds_store_type {
    const char *type_url;
    char *version; /* SotW version_info: the generation it last changed in */
    struct mp_xds_store_res *res;
    size_t n;
};

#define MP_XDS_STORE_NTYPES 5

struct mp_xds_store {
    int refs;
    uint64_t generation;
    struct mp_xds_store_type types[MP_XDS_STORE_NTYPES];
};

/**
 * Loads every *.yaml, *.yml and *.json file under dir (recursively). A
 * type's version is carried over from prev (may be NULL) when its content
 * is unchanged, else it becomes the new generation number. On success
 * *out holds a store with one reference. On failure returns MP_ERR_IO,
 * MP_ERR_PARSE, MP_ERR_INVAL or MP_ERR_NOMEM with *err naming the file and
 * resource ("clusters/a.yaml: resources[1].connect_timeout: ...").
 */
int mp_xds_store_load(const char *dir, const struct mp_xds_store *prev, struct mp_xds_store **out,
                      char **err);

/** Takes a reference. Owner's thread only (the grpc thread). */
struct mp_xds_store *mp_xds_store_ref(struct mp_xds_store *s);

/** Drops a reference, freeing the store at zero. NULL is a no-op. */
void mp_xds_store_unref(struct mp_xds_store *s);

/** The resources of type_url, or NULL for a type the store does not serve. */
const struct mp_xds_store_type *mp_xds_store_type(const struct mp_xds_store *s,
                                                  const char *type_url);

/** Resource name of type t, or NULL. */
const struct mp_xds_store_res *mp_xds_store_find(const struct mp_xds_store_type *t,
                                                 const char *name);

/** True when both stores hold exactly the same resources. */
int mp_xds_store_equal(const struct mp_xds_store *a, const struct mp_xds_store *b);

#endif

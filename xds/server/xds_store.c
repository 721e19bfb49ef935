/*
 * xds_store.c: directory of Envoy resource files -> serialized resources.
 *
 * Each file holds one resource (a mapping), a list of them, or Envoy's
 * file-subscription form {resources: [...]}. A resource names its type with
 * "@type"; without one, the type comes from the file's name or the nearest
 * directory named for a type (listeners, routes, clusters, endpoints,
 * secrets, or lds/rds/cds/eds/sds).
 */
#include "xds_store.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "ads_names.h"
#include "google/protobuf/any.pb-c.h"
#include "mp_common.h"
#include "pb_json.h"
#include "pb_yaml.h"
#include "type_registry.h"
#include "xds_client.h"

static const char *const type_urls[MP_XDS_STORE_NTYPES] = {
    MP_XDS_TYPE_LISTENER, MP_XDS_TYPE_ROUTE,  MP_XDS_TYPE_CLUSTER,
    MP_XDS_TYPE_ENDPOINT, MP_XDS_TYPE_SECRET,
};

/* Folder and file names that imply a type. */
static const struct {
    const char *word;
    int type;
} type_words[] = {
    {"listeners", 0}, {"listener", 0}, {"lds", 0},     {"routes", 1}, {"route", 1},
    {"rds", 1},       {"clusters", 2}, {"cluster", 2}, {"cds", 2},    {"endpoints", 3},
    {"endpoint", 3},  {"eds", 3},      {"secrets", 4}, {"secret", 4}, {"sds", 4},
};

/* ---- building ---- */

struct type_build {
    struct mp_xds_store_res *res;
    size_t n, cap;
};

struct build {
    const char *root;
    struct type_build t[MP_XDS_STORE_NTYPES];
    char **err;
};

static void res_free(struct mp_xds_store_res *r)
{
    free(r->name);
    free(r->version);
    free(r->data);
}

static int type_index(const char *type_url)
{
    const char *slash = strrchr(type_url, '/');
    const char *full = slash ? slash + 1 : type_url;
    for (int i = 0; i < MP_XDS_STORE_NTYPES; i++)
        if (strcmp(strrchr(type_urls[i], '/') + 1, full) == 0)
            return i;
    return -1;
}

/* The type a path implies: the file's base name (without extension) first,
 * then each folder up to the root. -1 when none. */
static int type_from_path(const char *root, const char *path)
{
    size_t rootlen = strlen(root);
    const char *rel = strncmp(path, root, rootlen) == 0 ? path + rootlen : path;
    char *copy = strdup(rel);
    if (!copy)
        return -1;
    int found = -1;
    char *dot = strrchr(copy, '.');
    if (dot && !strchr(dot, '/'))
        *dot = '\0';
    /* walk components from the last to the first */
    for (;;) {
        char *slash = strrchr(copy, '/');
        const char *comp = slash ? slash + 1 : copy;
        for (size_t i = 0; i < MP_ARRAY_LEN(type_words) && found < 0; i++)
            if (strcmp(comp, type_words[i].word) == 0)
                found = type_words[i].type;
        if (found >= 0 || !slash)
            break;
        *slash = '\0';
    }
    free(copy);
    return found;
}

/* FNV-1a 64: the per-resource version only has to change with the bytes. */
static uint64_t hash_bytes(const uint8_t *p, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < n; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

/* Adds one resource (type index ti, serialized data taken on success). */
static int add_resource(struct build *b, int ti, const ProtobufCMessage *msg, uint8_t *data,
                        size_t len, const char *where)
{
    const char *name = mp_ads_message_name(msg);
    if (!name || !name[0])
        return mp_set_err(b->err, "%s: resource has no name", where);
    struct type_build *t = &b->t[ti];
    for (size_t i = 0; i < t->n; i++)
        if (strcmp(t->res[i].name, name) == 0)
            return mp_set_err(b->err, "%s: %s \"%s\" is defined twice", where,
                              strrchr(type_urls[ti], '.') + 1, name);
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        struct mp_xds_store_res *nr = realloc(t->res, cap * sizeof(*nr));
        if (!nr)
            return MP_ERR_NOMEM;
        t->res = nr;
        t->cap = cap;
    }
    char version[17];
    snprintf(version, sizeof(version), "%016llx", (unsigned long long)hash_bytes(data, len));
    struct mp_xds_store_res r = {.name = strdup(name), .version = strdup(version)};
    if (!r.name || !r.version) {
        res_free(&r);
        return MP_ERR_NOMEM;
    }
    r.data = data;
    r.len = len;
    t->res[t->n++] = r;
    return 0;
}

/* One resource node of a file: with "@type" it is parsed as an Any,
 * otherwise as the type its path implies. */
static int load_item(struct build *b, const struct mp_json *item, int path_type, const char *where)
{
    ProtobufCMessage *parsed = NULL, *msg = NULL;
    char *perr = NULL;
    uint8_t *data = NULL;
    size_t len = 0;
    int ti, rc;
    if (mp_json_object_get(item, "@type")) {
        rc = mp_pb_from_json_node(item, &google__protobuf__any__descriptor, 0, &parsed, &perr);
        if (rc)
            goto fail_parse;
        Google__Protobuf__Any *any = (Google__Protobuf__Any *)parsed;
        ti = type_index(any->type_url);
        if (ti < 0) {
            rc = mp_set_err(b->err, "%s: \"@type\" %s is not an xDS resource type served here",
                            where, any->type_url);
            goto out;
        }
        const ProtobufCMessageDescriptor *desc = mp_type_registry_find(any->type_url);
        msg = desc ? protobuf_c_message_unpack(desc, NULL, any->value.len, any->value.data) : NULL;
        data = malloc(any->value.len ? any->value.len : 1);
        if (!msg || !data) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        memcpy(data, any->value.data, any->value.len);
        len = any->value.len;
    } else {
        ti = path_type;
        if (ti < 0) {
            rc = mp_set_err(b->err,
                            "%s: no \"@type\", and neither the file nor a folder is named for a "
                            "type (listeners, routes, clusters, endpoints, secrets)",
                            where);
            goto out;
        }
        rc = mp_pb_from_json_node(item, mp_type_registry_find(type_urls[ti]), 0, &msg, &perr);
        if (rc)
            goto fail_parse;
        len = protobuf_c_message_get_packed_size(msg);
        data = malloc(len ? len : 1);
        if (!data) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
        protobuf_c_message_pack(msg, data);
    }
    rc = add_resource(b, ti, msg, data, len, where);
    if (!rc)
        data = NULL;
    goto out;
fail_parse:
    if (rc != MP_ERR_NOMEM)
        rc = mp_set_err(b->err, "%s: %s", where, perr ? perr : "invalid resource");
out:
    free(perr);
    free(data);
    if (msg)
        protobuf_c_message_free_unpacked(msg, NULL);
    if (parsed)
        protobuf_c_message_free_unpacked(parsed, NULL);
    return rc;
}

static int read_file(const char *path, char **text, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return MP_ERR_IO;
    char *buf = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    for (;;) {
        if (cap - n < 4096) {
            cap = cap ? cap * 2 : 8192;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                rc = MP_ERR_NOMEM;
                break;
            }
            buf = nb;
        }
        size_t got = fread(buf + n, 1, cap - n, f);
        n += got;
        if (got == 0) {
            if (ferror(f))
                rc = MP_ERR_IO;
            break;
        }
    }
    fclose(f);
    if (rc) {
        free(buf);
        return rc;
    }
    if (!buf && !(buf = malloc(1)))
        return MP_ERR_NOMEM;
    buf[n] = '\0';
    *text = buf;
    *len = n;
    return 0;
}

static int load_file(struct build *b, const char *path)
{
    const char *rel = path + strlen(b->root);
    while (*rel == '/')
        rel++;
    char *text = NULL, *perr = NULL;
    size_t len = 0;
    struct mp_json_doc *doc = NULL;
    int rc = read_file(path, &text, &len);
    if (rc) {
        if (rc == MP_ERR_IO)
            mp_set_err(b->err, "%s: %s", rel, strerror(errno));
        return rc;
    }
    rc = mp_yaml_parse(text, len, NULL, &doc, &perr);
    if (rc) {
        if (rc != MP_ERR_NOMEM)
            mp_set_err(b->err, "%s: %s", rel, perr ? perr : "invalid YAML");
        goto out;
    }
    const struct mp_json *root = mp_json_doc_root(doc);
    const struct mp_json *list = root;
    const char *prefix = "";
    if (root && root->type == MP_JSON_OBJECT && mp_json_object_get(root, "resources")) {
        list = mp_json_object_get(root, "resources");
        prefix = "resources";
    }
    int path_type = type_from_path(b->root, path);
    char where[1024];
    if (!list || list->type == MP_JSON_NULL)
        goto out; /* an empty file holds no resources */
    if (list->type == MP_JSON_OBJECT) {
        snprintf(where, sizeof(where), "%s", rel);
        rc = load_item(b, list, path_type, where);
    } else if (list->type == MP_JSON_ARRAY) {
        for (size_t i = 0; i < list->u.arr.n && !rc; i++) {
            snprintf(where, sizeof(where), "%s: %s[%zu]", rel, prefix, i);
            rc = load_item(b, list->u.arr.items[i], path_type, where);
        }
    } else {
        rc = mp_set_err(b->err,
                        "%s: expected a resource, a list of resources or {resources: "
                        "[...]}, found %s",
                        rel, mp_json_type_name(list->type));
    }
out:
    free(perr);
    free(text);
    mp_json_doc_free(doc);
    return rc;
}

static int has_suffix(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Loads dir's files in name order (so errors and duplicates are reported
 * the same way every time), then its sub-folders. */
static int load_dir(struct build *b, const char *dir, int depth)
{
    if (depth > 16)
        return mp_set_err(b->err, "%s: folders nested too deep", dir);
    DIR *d = opendir(dir);
    if (!d) {
        mp_set_err(b->err, "%s: %s", dir, strerror(errno));
        return MP_ERR_IO;
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    int rc = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue; /* hidden files and editors' temporaries */
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            char **nn = realloc(names, cap * sizeof(*nn));
            if (!nn) {
                rc = MP_ERR_NOMEM;
                break;
            }
            names = nn;
        }
        if (!(names[n] = strdup(e->d_name))) {
            rc = MP_ERR_NOMEM;
            break;
        }
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof(*names), cmp_str);
    for (size_t i = 0; i < n && !rc; i++) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) != 0)
            continue; /* removed while we read */
        if (S_ISDIR(st.st_mode))
            rc = load_dir(b, path, depth + 1);
        else if (S_ISREG(st.st_mode) &&
                 (has_suffix(names[i], ".yaml") || has_suffix(names[i], ".yml") ||
                  has_suffix(names[i], ".json")))
            rc = load_file(b, path);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

/* ---- the store ---- */

static void store_free(struct mp_xds_store *s)
{
    for (int i = 0; i < MP_XDS_STORE_NTYPES; i++) {
        for (size_t k = 0; k < s->types[i].n; k++)
            res_free(&s->types[i].res[k]);
        free(s->types[i].res);
        free(s->types[i].version);
    }
    free(s);
}

static int cmp_res(const void *a, const void *b)
{
    return strcmp(((const struct mp_xds_store_res *)a)->name,
                  ((const struct mp_xds_store_res *)b)->name);
}

static int type_equal(const struct mp_xds_store_type *a, const struct mp_xds_store_type *b)
{
    if (a->n != b->n)
        return 0;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->res[i].name, b->res[i].name) != 0 || a->res[i].len != b->res[i].len ||
            memcmp(a->res[i].data, b->res[i].data, a->res[i].len) != 0)
            return 0;
    return 1;
}

int mp_xds_store_load(const char *dir, const struct mp_xds_store *prev, struct mp_xds_store **out,
                      char **err)
{
    struct build b = {.root = dir, .err = err};
    int rc = load_dir(&b, dir, 0);
    struct mp_xds_store *s = rc ? NULL : calloc(1, sizeof(*s));
    if (!rc && !s)
        rc = MP_ERR_NOMEM;
    if (rc) {
        for (int i = 0; i < MP_XDS_STORE_NTYPES; i++) {
            for (size_t k = 0; k < b.t[i].n; k++)
                res_free(&b.t[i].res[k]);
            free(b.t[i].res);
        }
        return rc;
    }
    s->refs = 1;
    s->generation = prev ? prev->generation + 1 : 1;
    for (int i = 0; i < MP_XDS_STORE_NTYPES; i++) {
        struct mp_xds_store_type *t = &s->types[i];
        t->type_url = type_urls[i];
        t->res = b.t[i].res;
        t->n = b.t[i].n;
        if (t->n)
            qsort(t->res, t->n, sizeof(*t->res), cmp_res);
        char v[32];
        if (prev && type_equal(t, &prev->types[i]))
            snprintf(v, sizeof(v), "%s", prev->types[i].version);
        else
            snprintf(v, sizeof(v), "%llu", (unsigned long long)s->generation);
        if (!(t->version = strdup(v))) {
            store_free(s);
            return MP_ERR_NOMEM;
        }
    }
    *out = s;
    return 0;
}

struct mp_xds_store *mp_xds_store_ref(struct mp_xds_store *s)
{
    s->refs++;
    return s;
}

void mp_xds_store_unref(struct mp_xds_store *s)
{
    if (s && --s->refs == 0)
        store_free(s);
}

const struct mp_xds_store_type *mp_xds_store_type(const struct mp_xds_store *s,
                                                  const char *type_url)
{
    int i = type_index(type_url);
    return i < 0 ? NULL : &s->types[i];
}

const struct mp_xds_store_res *mp_xds_store_find(const struct mp_xds_store_type *t,
                                                 const char *name)
{
    struct mp_xds_store_res key = {.name = (char *)name};
    return t->n ? bsearch(&key, t->res, t->n, sizeof(*t->res), cmp_res) : NULL;
}

int mp_xds_store_equal(const struct mp_xds_store *a, const struct mp_xds_store *b)
{
    for (int i = 0; i < MP_XDS_STORE_NTYPES; i++)
        if (!type_equal(&a->types[i], &b->types[i]))
            return 0;
    return 1;
}

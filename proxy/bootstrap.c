/* bootstrap.c: reading the Envoy v3 Bootstrap and Envoy's --config-yaml merge. */
#include "bootstrap.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mp_common.h"
#include "options.h"
#include "pb_json.h"
#include "pb_merge.h"
#include "pb_yaml.h"

#define MAX_CONFIG_BYTES (64u * 1024 * 1024)

typedef Envoy__Config__Bootstrap__V3__Bootstrap Bootstrap;

void mp_bootstrap_free(Bootstrap *b)
{
    if (b != NULL)
        protobuf_c_message_free_unpacked(&b->base, NULL);
}

static int read_file(const char *path, char **out, size_t *out_len, char **err)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) {
        mp_set_err(err, "cannot open '%s': %s", path, strerror(errno));
        return MP_ERR_IO;
    }
    size_t cap = 64 * 1024, len = 0;
    char *buf = malloc(cap + 1);
    int rc = 0;
    while (buf != NULL) {
        size_t n = fread(buf + len, 1, cap - len, f);
        len += n;
        if (n == 0)
            break;
        if (len == cap) {
            if (cap >= MAX_CONFIG_BYTES) {
                mp_set_err(err, "'%s' is larger than %u bytes", path, MAX_CONFIG_BYTES);
                rc = MP_ERR_LIMIT;
                break;
            }
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
    }
    if (rc == 0 && buf != NULL && ferror(f)) {
        mp_set_err(err, "cannot read '%s': %s", path, strerror(errno));
        rc = MP_ERR_IO;
    }
    fclose(f);
    if (buf == NULL) {
        mp_set_err(err, "out of memory reading '%s'", path);
        return MP_ERR_NOMEM;
    }
    if (rc != 0) {
        free(buf);
        return rc;
    }
    buf[len] = '\0';
    *out = buf;
    *out_len = len;
    return 0;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

int mp_bootstrap_load_yaml(const char *text, size_t len, unsigned flags, Bootstrap **out,
                           char **err)
{
    ProtobufCMessage *m = NULL;
    unsigned pf = (flags & MP_BOOTSTRAP_ALLOW_UNKNOWN) ? MP_PB_JSON_IGNORE_UNKNOWN : 0;
    int rc = mp_pb_from_yaml(text, len, &envoy__config__bootstrap__v3__bootstrap__descriptor, pf,
                             &m, err);
    if (rc != 0)
        return rc;
    *out = (Bootstrap *)m;
    return 0;
}

int mp_bootstrap_load_file(const char *path, unsigned flags, Bootstrap **out, char **err)
{
    char *text;
    size_t len;
    int rc = read_file(path, &text, &len, err);
    if (rc != 0)
        return rc;
    unsigned pf = (flags & MP_BOOTSTRAP_ALLOW_UNKNOWN) ? MP_PB_JSON_IGNORE_UNKNOWN : 0;
    ProtobufCMessage *m = NULL;
    if (ends_with(path, ".pb")) {
        m = protobuf_c_message_unpack(&envoy__config__bootstrap__v3__bootstrap__descriptor, NULL,
                                      len, (const uint8_t *)text);
        if (m == NULL) {
            mp_set_err(err, "'%s' is not a binary envoy.config.bootstrap.v3.Bootstrap", path);
            rc = MP_ERR_PARSE;
        }
    } else if (ends_with(path, ".pb_text")) {
        mp_set_err(err, "'%s': text protobuf bootstraps are not supported; use YAML or JSON", path);
        rc = MP_ERR_UNSUPPORTED;
    } else if (ends_with(path, ".json")) {
        rc = mp_pb_from_json(text, len, &envoy__config__bootstrap__v3__bootstrap__descriptor, pf,
                             &m, err);
    } else {
        rc = mp_pb_from_yaml(text, len, &envoy__config__bootstrap__v3__bootstrap__descriptor, pf,
                             &m, err);
    }
    free(text);
    if (rc != 0)
        return rc;
    *out = (Bootstrap *)m;
    return 0;
}

int mp_bootstrap_merge(Bootstrap **dst, const Bootstrap *src, char **err)
{
    /* Envoy applies --config-yaml with protobuf's MergeFrom. Not done by
     * parsing two encodings back to back: see pb_merge.h for why. */
    int rc = mp_pb_merge(&(*dst)->base, &src->base);
    if (rc != 0) {
        mp_set_err(err, "--config-yaml: merging into the bootstrap failed: %s", mp_strerror(rc));
        return rc;
    }
    return 0;
}

static int set_string(char **field, const char *value)
{
    char *copy = strdup(value);
    if (copy == NULL)
        return MP_ERR_NOMEM;
    if (*field != NULL && *field != protobuf_c_empty_string)
        free(*field);
    *field = copy;
    return 0;
}

static void *new_message(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);
    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

/* --service-node/cluster/zone override node.id/cluster/locality.zone. */
static int apply_node_flags(const struct mp_options *opts, Bootstrap *b)
{
    if (opts->service_node == NULL && opts->service_cluster == NULL && opts->service_zone == NULL)
        return 0;
    if (b->node == NULL &&
        (b->node = new_message(&envoy__config__core__v3__node__descriptor)) == NULL)
        return MP_ERR_NOMEM;
    if (opts->service_node != NULL && set_string(&b->node->id, opts->service_node) != 0)
        return MP_ERR_NOMEM;
    if (opts->service_cluster != NULL && set_string(&b->node->cluster, opts->service_cluster) != 0)
        return MP_ERR_NOMEM;
    if (opts->service_zone != NULL) {
        if (b->node->locality == NULL &&
            (b->node->locality = new_message(&envoy__config__core__v3__locality__descriptor)) ==
                NULL)
            return MP_ERR_NOMEM;
        if (set_string(&b->node->locality->zone, opts->service_zone) != 0)
            return MP_ERR_NOMEM;
    }
    return 0;
}

int mp_bootstrap_from_options(const struct mp_options *opts, Bootstrap **out, char **err)
{
    unsigned flags = opts->allow_unknown_static_fields ? MP_BOOTSTRAP_ALLOW_UNKNOWN : 0;
    Bootstrap *b = NULL, *overlay = NULL;
    int rc;
    if (opts->config_path == NULL && opts->config_yaml == NULL) {
        mp_set_err(err, "no configuration: give -c/--config-path and/or --config-yaml");
        return MP_ERR_INVAL;
    }
    if (opts->config_path != NULL) {
        rc = mp_bootstrap_load_file(opts->config_path, flags, &b, err);
        if (rc != 0)
            return rc;
    }
    if (opts->config_yaml != NULL) {
        rc = mp_bootstrap_load_yaml(opts->config_yaml, strlen(opts->config_yaml), flags, &overlay,
                                    err);
        if (rc != 0) {
            if (err != NULL && *err != NULL) {
                char *inner = *err;
                *err = NULL;
                mp_set_err(err, "--config-yaml: %s", inner);
                free(inner);
            }
            goto fail;
        }
        if (b == NULL) {
            b = overlay;
            overlay = NULL;
        } else if ((rc = mp_bootstrap_merge(&b, overlay, err)) != 0) {
            goto fail;
        }
    }
    if ((rc = apply_node_flags(opts, b)) != 0) {
        mp_set_err(err, "out of memory");
        goto fail;
    }
    mp_bootstrap_free(overlay);
    *out = b;
    return 0;
fail:
    mp_bootstrap_free(b);
    mp_bootstrap_free(overlay);
    return rc;
}

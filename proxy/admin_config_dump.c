/*
 * admin_config_dump.c: /config_dump's query parameters. The dump is written
 * whole by its producers (the server for static resources, the xDS runtime
 * for dynamic ones) and reshaped here, so that the producers need not know
 * about masks and regexes and every query sees the same redaction.
 */
#include "admin_config_dump.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "mp_common.h"

#define MAX_PATHS 32

struct mask {
    const char *paths[MAX_PATHS]; /* each a dotted path, NUL-terminated */
    size_t n;
};

struct ctx {
    struct mp_buffer *out;
    pcre2_code *re;
    pcre2_match_data *md;
    int rc;
};

/* Item type of each repeated resource field, after the config's own type. */
static const struct {
    const char *field;
    const char *item;
} item_types[] = {
    {"static_clusters", "StaticCluster"},
    {"dynamic_active_clusters", "DynamicCluster"},
    {"dynamic_warming_clusters", "DynamicCluster"},
    {"static_listeners", "StaticListener"},
    {"dynamic_listeners", "DynamicListener"},
    {"static_route_configs", "StaticRouteConfig"},
    {"dynamic_route_configs", "DynamicRouteConfig"},
    {"static_scoped_route_configs", "InlineScopedRouteConfigs"},
    {"dynamic_scoped_route_configs", "DynamicScopedRouteConfigs"},
    {"static_endpoint_configs", "StaticEndpointConfig"},
    {"dynamic_endpoint_configs", "DynamicEndpointConfig"},
    {"static_secrets", "StaticSecret"},
    {"dynamic_active_secrets", "DynamicSecret"},
    {"dynamic_warming_secrets", "DynamicSecret"},
};

static const char *item_type(const char *field)
{
    for (size_t i = 0; i < MP_ARRAY_LEN(item_types); i++)
        if (strcmp(item_types[i].field, field) == 0)
            return item_types[i].item;
    return NULL;
}

static void put(struct ctx *c, const char *fmt, const char *s)
{
    if (c->rc == 0)
        c->rc = mp_buffer_appendf(c->out, fmt, s);
}

static void put_str(struct ctx *c, const char *s, size_t len)
{
    put(c, "%s", "\"");
    for (size_t i = 0; i < len && c->rc == 0; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (ch == '"' || ch == '\\')
            c->rc = mp_buffer_appendf(c->out, "\\%c", ch);
        else if (ch < 0x20)
            c->rc = mp_buffer_appendf(c->out, "\\u%04x", ch);
        else
            c->rc = mp_buffer_appendf(c->out, "%c", ch);
    }
    put(c, "%s", "\"");
}

/* A DataSource that holds secret bytes inline (filename stays visible). */
static bool is_sensitive(const char *key, const struct mp_json *v)
{
    static const char *const keys[] = {"private_key", "password", "secret", "keys"};
    bool named = false;
    for (size_t i = 0; i < MP_ARRAY_LEN(keys); i++)
        named |= strcmp(key, keys[i]) == 0;
    if (!named || v->type != MP_JSON_OBJECT)
        return false;
    return mp_json_object_get(v, "inline_bytes") || mp_json_object_get(v, "inline_string");
}

/* Sub-mask of m for member key: NULL means "take everything". *skip when
 * the key is masked out. */
static void mask_descend(const struct mask *m, const char *key, struct mask *sub, bool *whole,
                         bool *skip)
{
    size_t kl = strlen(key);
    sub->n = 0;
    *whole = false;
    *skip = true;
    for (size_t i = 0; i < m->n; i++) {
        const char *p = m->paths[i];
        if (strncmp(p, key, kl) != 0 || (p[kl] != '\0' && p[kl] != '.'))
            continue;
        *skip = false;
        if (p[kl] == '\0')
            *whole = true;
        else if (sub->n < MAX_PATHS)
            sub->paths[sub->n++] = p + kl + 1;
    }
}

static void emit(struct ctx *c, const struct mp_json *v, const struct mask *m);

static void emit_array(struct ctx *c, const struct mp_json *v, const struct mask *m)
{
    put(c, "%s", "[");
    for (size_t i = 0; i < v->u.arr.n; i++) {
        if (i)
            put(c, "%s", ",");
        emit(c, v->u.arr.items[i], m);
    }
    put(c, "%s", "]");
}

static void emit_object(struct ctx *c, const struct mp_json *v, const struct mask *m)
{
    put(c, "%s", "{");
    bool first = true;
    for (size_t i = 0; i < v->u.obj.n; i++) {
        const struct mp_json_member *mem = &v->u.obj.members[i];
        struct mask sub;
        bool whole = true, skip = false;
        if (m && strcmp(mem->key, "@type") != 0)
            mask_descend(m, mem->key, &sub, &whole, &skip);
        if (skip)
            continue;
        if (!first)
            put(c, "%s", ",");
        first = false;
        put_str(c, mem->key, mem->key_len);
        put(c, "%s", ":");
        if (is_sensitive(mem->key, mem->value))
            put(c, "%s", "{\"inline_string\":\"[redacted]\"}");
        else
            emit(c, mem->value, whole ? NULL : &sub);
    }
    put(c, "%s", "}");
}

/* Writes v; m (NULL for all) keeps only the masked fields of objects. */
static void emit(struct ctx *c, const struct mp_json *v, const struct mask *m)
{
    switch (v->type) {
    case MP_JSON_NULL: put(c, "%s", "null"); break;
    case MP_JSON_BOOL: put(c, "%s", v->u.boolean ? "true" : "false"); break;
    case MP_JSON_NUMBER:
    case MP_JSON_PLAIN: put(c, "%s", v->u.str.s); break;
    case MP_JSON_STRING: put_str(c, v->u.str.s, v->u.str.len); break;
    case MP_JSON_ARRAY: emit_array(c, v, m); break;
    case MP_JSON_OBJECT: emit_object(c, v, m); break;
    }
}

/* The name Envoy's name_regex matches for one resource item. */
static const char *item_name(const struct mp_json *item)
{
    const struct mp_json *n = mp_json_object_get(item, "name");
    if (n && n->type == MP_JSON_STRING)
        return n->u.str.s;
    static const char *const inner[][2] = {{"cluster", "name"},
                                           {"listener", "name"},
                                           {"route_config", "name"},
                                           {"endpoint_config", "cluster_name"},
                                           {"secret", "name"}};
    for (size_t i = 0; i < MP_ARRAY_LEN(inner); i++) {
        const struct mp_json *o = mp_json_object_get(item, inner[i][0]);
        const struct mp_json *s = o ? mp_json_object_get(o, inner[i][1]) : NULL;
        if (s && s->type == MP_JSON_STRING)
            return s->u.str.s;
    }
    return NULL;
}

static bool name_matches(struct ctx *c, const struct mp_json *item)
{
    if (!c->re)
        return true;
    const char *name = item_name(item);
    if (!name)
        return false;
    return pcre2_match(c->re, (PCRE2_SPTR)name, strlen(name), 0, 0, c->md, NULL) >= 0;
}

/* Items of every config named by resource, as {"@type":...,...item}. */
static bool emit_resource(struct ctx *c, const struct mp_json **configs, size_t n,
                          const char *resource, const struct mask *m)
{
    const char *itype = item_type(resource);
    bool found = false, first = true;
    for (size_t i = 0; i < n; i++) {
        const struct mp_json *arr = mp_json_object_get(configs[i], resource);
        const struct mp_json *t = mp_json_object_get(configs[i], "@type");
        if (!arr || arr->type != MP_JSON_ARRAY || !t || t->type != MP_JSON_STRING)
            continue;
        found = true;
        for (size_t j = 0; j < arr->u.arr.n; j++) {
            const struct mp_json *item = arr->u.arr.items[j];
            if (item->type != MP_JSON_OBJECT || !name_matches(c, item))
                continue;
            put(c, "%s", first ? "{\"@type\":" : ",{\"@type\":");
            first = false;
            char type[256];
            snprintf(type, sizeof(type), "%s.%s", t->u.str.s, itype ? itype : resource);
            put_str(c, type, strlen(type));
            struct mp_buffer *saved = c->out;
            struct mp_buffer body = MP_BUFFER_INIT;
            c->out = &body;
            emit_object(c, item, m);
            c->out = saved;
            /* the item's own "{...}" without its braces, after "@type" */
            size_t bl = mp_buffer_len(&body);
            if (bl > 2 && c->rc == 0) {
                mp_buffer_drain(&body, 1);
                c->rc = mp_buffer_appendf(c->out, ",");
                if (c->rc == 0)
                    c->rc = mp_buffer_move_n(c->out, &body, bl - 2);
            }
            mp_buffer_clear(&body);
            put(c, "%s", "}");
        }
    }
    return found;
}

/* One config with name_regex applied to its resource arrays. */
static void emit_config(struct ctx *c, const struct mp_json *cfg, const struct mask *m)
{
    if (!c->re) {
        emit(c, cfg, m);
        return;
    }
    put(c, "%s", "{");
    bool first = true;
    for (size_t i = 0; i < cfg->u.obj.n; i++) {
        const struct mp_json_member *mem = &cfg->u.obj.members[i];
        struct mask sub;
        bool whole = true, skip = false;
        if (m && strcmp(mem->key, "@type") != 0)
            mask_descend(m, mem->key, &sub, &whole, &skip);
        if (skip)
            continue;
        put(c, "%s", first ? "" : ",");
        first = false;
        put_str(c, mem->key, mem->key_len);
        put(c, "%s", ":");
        if (item_type(mem->key) && mem->value->type == MP_JSON_ARRAY) {
            put(c, "%s", "[");
            bool f2 = true;
            for (size_t j = 0; j < mem->value->u.arr.n; j++) {
                const struct mp_json *item = mem->value->u.arr.items[j];
                if (!name_matches(c, item))
                    continue;
                put(c, "%s", f2 ? "" : ",");
                f2 = false;
                emit(c, item, whole ? NULL : &sub);
            }
            put(c, "%s", "]");
        } else {
            emit(c, mem->value, whole ? NULL : &sub);
        }
    }
    put(c, "%s", "}");
}

static int parse_mask(const char *spec, char *copy, size_t cap, struct mask *m, char **err)
{
    m->n = 0;
    if (strlen(spec) >= cap)
        return mp_set_err(err, "mask: too long");
    strcpy(copy, spec);
    char *save = NULL;
    for (char *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (m->n == MAX_PATHS)
            return mp_set_err(err, "mask: more than %d paths", MAX_PATHS);
        m->paths[m->n++] = p;
    }
    if (m->n == 0)
        return mp_set_err(err, "mask: no field paths");
    return 0;
}

/* Merges configs that share an @type into the first one's slot: returns
 * the distinct configs in order, each pointing at a node in doc. */
static int merge_configs(struct mp_json_doc *doc, const struct mp_json *arr,
                         const struct mp_json ***out, size_t *n_out)
{
    const struct mp_json **cfgs = calloc(arr->u.arr.n + 1, sizeof(*cfgs));
    if (!cfgs)
        return MP_ERR_NOMEM;
    size_t n = 0;
    for (size_t i = 0; i < arr->u.arr.n; i++) {
        struct mp_json *cfg = arr->u.arr.items[i];
        const struct mp_json *t = mp_json_object_get(cfg, "@type");
        if (cfg->type != MP_JSON_OBJECT || !t || t->type != MP_JSON_STRING)
            continue;
        size_t k = 0;
        for (; k < n; k++)
            if (strcmp(mp_json_object_get(cfgs[k], "@type")->u.str.s, t->u.str.s) == 0)
                break;
        if (k == n) {
            cfgs[n++] = cfg;
            continue;
        }
        /* Copy the later config's fields the first lacks (e.g. dynamic
         * secrets beside static ones): a new object node. */
        struct mp_json *merged = mp_json_node_new(doc, MP_JSON_OBJECT, NULL, 0, 0);
        if (!merged) {
            free(cfgs);
            return MP_ERR_NOMEM;
        }
        const struct mp_json *parts[2] = {cfgs[k], cfg};
        for (int p = 0; p < 2; p++)
            for (size_t j = 0; j < parts[p]->u.obj.n; j++) {
                const struct mp_json_member *mem = &parts[p]->u.obj.members[j];
                if (p == 1 && mp_json_object_get(parts[0], mem->key))
                    continue;
                if (mp_json_object_append(doc, merged, mem->key, mem->key_len, mem->value, 0)) {
                    free(cfgs);
                    return MP_ERR_NOMEM;
                }
            }
        const char *dup = NULL;
        if (mp_json_object_close(doc, merged, &dup) != 0) {
            free(cfgs);
            return MP_ERR_NOMEM;
        }
        cfgs[k] = merged;
    }
    *out = cfgs;
    *n_out = n;
    return 0;
}

int mp_admin_config_dump_filter(const char *dump, size_t len, const struct mp_admin_dump_query *q,
                                struct mp_buffer *out, char **err)
{
    struct mp_json_doc *doc = NULL;
    struct ctx c = {.out = out};
    const struct mp_json **cfgs = NULL;
    size_t n = 0;
    struct mask m;
    char mask_copy[1024];
    int rc = mp_json_parse(dump, len, NULL, &doc, err);
    if (rc != 0) {
        rc = MP_ERR_INVAL;
        goto out;
    }
    if (q->mask && (rc = parse_mask(q->mask, mask_copy, sizeof(mask_copy), &m, err)) != 0)
        goto out;
    if (q->name_regex) {
        int code;
        PCRE2_SIZE off;
        c.re =
            pcre2_compile((PCRE2_SPTR)q->name_regex, PCRE2_ZERO_TERMINATED, 0, &code, &off, NULL);
        if (!c.re) {
            PCRE2_UCHAR msg[128];
            pcre2_get_error_message(code, msg, sizeof(msg));
            rc = mp_set_err(err, "name_regex: %s at offset %zu", (const char *)msg, (size_t)off);
            goto out;
        }
        c.md = pcre2_match_data_create_from_pattern(c.re, NULL);
        if (!c.md) {
            rc = MP_ERR_NOMEM;
            goto out;
        }
    }
    const struct mp_json *arr = mp_json_object_get(mp_json_doc_root(doc), "configs");
    if (!arr || arr->type != MP_JSON_ARRAY) {
        rc = mp_set_err(err, "config dump has no configs array");
        goto out;
    }
    if ((rc = merge_configs(doc, arr, &cfgs, &n)) != 0)
        goto out;
    /* Envoy leaves endpoints out unless asked: they can be large. */
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        const char *t = mp_json_object_get(cfgs[i], "@type")->u.str.s;
        if (q->include_eds || !strstr(t, "envoy.admin.v3.EndpointsConfigDump"))
            cfgs[kept++] = cfgs[i];
    }
    n = kept;
    put(&c, "%s", "{\"configs\":[");
    if (q->resource) {
        if (!emit_resource(&c, cfgs, n, q->resource, q->mask ? &m : NULL)) {
            rc = MP_ERR_NOTFOUND;
            mp_set_err(err, "resource %s not found in config dump", q->resource);
            goto out;
        }
    } else {
        for (size_t i = 0; i < n; i++) {
            put(&c, "%s", i ? "," : "");
            emit_config(&c, cfgs[i], q->mask ? &m : NULL);
        }
    }
    put(&c, "%s", "]}\n");
    rc = c.rc;
out:
    free(cfgs);
    pcre2_match_data_free(c.md);
    pcre2_code_free(c.re);
    mp_json_doc_free(doc);
    return rc;
}

/*
 * pb_yaml.c: libyaml events -> JSON DOM, then the shared DOM -> protobuf path.
 *
 * Aliases share the anchored node (the DOM is read-only), so a document is
 * a DAG; node weights (json.h) count each use, which stops "billion laughs"
 * documents at the node limit before any walk can blow up.
 */
#include "pb_yaml.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "mp_common.h"
#include "pb_json.h"

#define DEFAULT_MAX_BYTES (64u * 1024 * 1024)
#define DEFAULT_MAX_DEPTH 128
#define DEFAULT_MAX_NODES (4u * 1024 * 1024)

struct anchor {
    char *name;
    struct mp_json *node;
};

struct yctx {
    yaml_parser_t parser;
    struct mp_json_doc *doc;
    struct anchor *anchors;
    size_t n_anchors, cap_anchors;
    size_t nodes, max_nodes;
    unsigned depth, max_depth;
    char **err;
    int rc;
};

static int fail_at(struct yctx *y, const yaml_mark_t *mark, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int fail_at(struct yctx *y, const yaml_mark_t *mark, int rc, const char *fmt, ...)
{
    if (y->rc != 0)
        return y->rc;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mp_set_err(y->err, "line %zu column %zu: %s", mark->line + 1, mark->column + 1, msg);
    y->rc = rc;
    return rc;
}

static int next_event(struct yctx *y, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&y->parser, ev)) {
        const yaml_parser_t *p = &y->parser;
        if (p->error == YAML_MEMORY_ERROR)
            return fail_at(y, &p->problem_mark, MP_ERR_NOMEM, "out of memory");
        return fail_at(y, &p->problem_mark, MP_ERR_PARSE, "%s%s%s",
                       p->problem ? p->problem : "invalid YAML", p->context ? " " : "",
                       p->context ? p->context : "");
    }
    return 0;
}

static uint32_t line_of(const yaml_event_t *ev)
{
    return (uint32_t)ev->start_mark.line + 1;
}

static int add_anchor(struct yctx *y, const yaml_char_t *name, struct mp_json *node)
{
    if (name == NULL)
        return 0;
    if (y->n_anchors == y->cap_anchors) {
        size_t cap = y->cap_anchors ? y->cap_anchors * 2 : 16;
        struct anchor *a = realloc(y->anchors, cap * sizeof(*a));
        if (a == NULL)
            return MP_ERR_NOMEM;
        y->anchors = a;
        y->cap_anchors = cap;
    }
    char *copy = strdup((const char *)name);
    if (copy == NULL)
        return MP_ERR_NOMEM;
    /* A redefined anchor shadows the earlier one from here on (YAML 1.2). */
    y->anchors[y->n_anchors].name = copy;
    y->anchors[y->n_anchors].node = node;
    y->n_anchors++;
    return 0;
}

static struct mp_json *find_anchor(struct yctx *y, const char *name)
{
    for (size_t i = y->n_anchors; i-- > 0;)
        if (strcmp(y->anchors[i].name, name) == 0)
            return y->anchors[i].node;
    return NULL;
}

/* Counts a node (or an aliased subtree) against the limits. */
static int account(struct yctx *y, const struct mp_json *n, const yaml_mark_t *mark)
{
    y->nodes += n->weight;
    if (y->nodes > y->max_nodes)
        return fail_at(y, mark, MP_ERR_LIMIT,
                       "document has too many nodes (aliases expand to more than %zu)",
                       y->max_nodes);
    if (y->depth + n->height > y->max_depth + 1)
        return fail_at(y, mark, MP_ERR_LIMIT, "nesting too deep");
    return 0;
}

static int parse_node(struct yctx *y, yaml_event_t *ev, struct mp_json **out);

/* An explicit core-schema tag decides quoting's meaning: `!!str 5` is a
 * string, `!!int "5"` and `!!bool "true"` are untyped scalars again. */
static bool tag_is(const yaml_char_t *tag, const char *want)
{
    return tag != NULL && strcmp((const char *)tag, want) == 0;
}

static enum mp_json_type scalar_type(const yaml_event_t *ev)
{
    const yaml_char_t *tag = ev->data.scalar.tag;
    if (tag_is(tag, YAML_STR_TAG))
        return MP_JSON_STRING;
    if (tag_is(tag, YAML_INT_TAG) || tag_is(tag, YAML_FLOAT_TAG) || tag_is(tag, YAML_BOOL_TAG) ||
        tag_is(tag, YAML_NULL_TAG))
        return MP_JSON_PLAIN;
    /* Quoted, block (| >) scalars are strings; plain ones wait for the
     * target field to decide. */
    return ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE ? MP_JSON_PLAIN : MP_JSON_STRING;
}

static int parse_scalar(struct yctx *y, yaml_event_t *ev, struct mp_json **out)
{
    const char *v = (const char *)ev->data.scalar.value;
    size_t len = ev->data.scalar.length;
    enum mp_json_type t = scalar_type(ev);
    struct mp_json *n = mp_json_node_new(y->doc, t, v, len, line_of(ev));
    if (n == NULL)
        return fail_at(y, &ev->start_mark, MP_ERR_NOMEM, "out of memory");
    if (add_anchor(y, ev->data.scalar.anchor, n) != 0)
        return fail_at(y, &ev->start_mark, MP_ERR_NOMEM, "out of memory");
    *out = n;
    return account(y, n, &ev->start_mark);
}

static int parse_sequence(struct yctx *y, yaml_event_t *start, struct mp_json **out)
{
    struct mp_json *arr = mp_json_node_new(y->doc, MP_JSON_ARRAY, NULL, 0, line_of(start));
    if (arr == NULL)
        return fail_at(y, &start->start_mark, MP_ERR_NOMEM, "out of memory");
    yaml_char_t *anchor = start->data.sequence_start.anchor;
    yaml_mark_t mark = start->start_mark;
    int rc = 0;
    for (;;) {
        yaml_event_t ev;
        if ((rc = next_event(y, &ev)) != 0)
            break;
        if (ev.type == YAML_SEQUENCE_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        struct mp_json *item = NULL;
        rc = parse_node(y, &ev, &item);
        yaml_event_delete(&ev);
        if (rc != 0)
            break;
        if (mp_json_array_append(y->doc, arr, item) != 0) {
            rc = fail_at(y, &mark, MP_ERR_NOMEM, "out of memory");
            break;
        }
    }
    /* Registered only when complete, so an alias cannot point into its own
     * anchor (a cycle): `&a [*a]` reports an unknown anchor instead. */
    if (rc == 0 && add_anchor(y, anchor, arr) != 0)
        rc = fail_at(y, &mark, MP_ERR_NOMEM, "out of memory");
    *out = arr;
    return rc;
}

/* Collects the mappings a merge key (`<<: *a` or `<<: [*a, *b]`) names. */
static int merge_sources(struct yctx *y, yaml_event_t *ev, struct mp_json ***srcs, size_t *n)
{
    struct mp_json *v = NULL;
    int rc = parse_node(y, ev, &v);
    if (rc != 0)
        return rc;
    size_t count = v->type == MP_JSON_ARRAY ? v->u.arr.n : 1;
    struct mp_json **list = realloc(*srcs, (*n + count) * sizeof(*list));
    if (list == NULL)
        return fail_at(y, &ev->start_mark, MP_ERR_NOMEM, "out of memory");
    *srcs = list;
    for (size_t i = 0; i < count; i++) {
        struct mp_json *s = v->type == MP_JSON_ARRAY ? v->u.arr.items[i] : v;
        if (s->type != MP_JSON_OBJECT)
            return fail_at(y, &ev->start_mark, MP_ERR_PARSE,
                           "merge key '<<' needs a mapping or a list of mappings");
        list[(*n)++] = s;
    }
    return 0;
}

static int parse_mapping(struct yctx *y, yaml_event_t *start, struct mp_json **out)
{
    struct mp_json *obj = mp_json_node_new(y->doc, MP_JSON_OBJECT, NULL, 0, line_of(start));
    if (obj == NULL)
        return fail_at(y, &start->start_mark, MP_ERR_NOMEM, "out of memory");
    *out = obj;
    yaml_char_t *anchor = start->data.mapping_start.anchor;
    yaml_mark_t mark = start->start_mark;
    struct mp_json **srcs = NULL;
    size_t n_srcs = 0;
    int rc = 0;
    for (;;) {
        yaml_event_t kev, vev;
        if ((rc = next_event(y, &kev)) != 0)
            break;
        if (kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            break;
        }
        struct mp_json *key = NULL;
        rc = parse_node(y, &kev, &key);
        yaml_mark_t kmark = kev.start_mark;
        bool merge = rc == 0 && kev.type == YAML_SCALAR_EVENT && key->type == MP_JSON_PLAIN &&
                     strcmp(key->u.str.s, "<<") == 0;
        yaml_event_delete(&kev);
        if (rc != 0)
            break;
        if (key->type != MP_JSON_STRING && key->type != MP_JSON_PLAIN) {
            rc = fail_at(y, &kmark, MP_ERR_PARSE, "mapping keys must be scalars");
            break;
        }
        if ((rc = next_event(y, &vev)) != 0)
            break;
        if (merge) {
            rc = merge_sources(y, &vev, &srcs, &n_srcs);
            yaml_event_delete(&vev);
            if (rc != 0)
                break;
            continue;
        }
        struct mp_json *val = NULL;
        rc = parse_node(y, &vev, &val);
        yaml_event_delete(&vev);
        if (rc != 0)
            break;
        if (mp_json_object_append(y->doc, obj, key->u.str.s, key->u.str.len, val,
                                  (uint32_t)kmark.line + 1) != 0) {
            rc = fail_at(y, &kmark, MP_ERR_NOMEM, "out of memory");
            break;
        }
    }
    /* Merge: explicit keys win, then earlier sources over later ones. */
    for (size_t s = 0; rc == 0 && s < n_srcs; s++) {
        const struct mp_json *src = srcs[s];
        for (size_t i = 0; rc == 0 && i < src->u.obj.n; i++) {
            const struct mp_json_member *m = &src->u.obj.members[i];
            bool have = false;
            for (size_t k = 0; k < obj->u.obj.n && !have; k++)
                have = obj->u.obj.members[k].key_len == m->key_len &&
                       memcmp(obj->u.obj.members[k].key, m->key, m->key_len) == 0;
            if (have)
                continue;
            if (mp_json_object_append(y->doc, obj, m->key, m->key_len, m->value, m->line) != 0)
                rc = fail_at(y, &mark, MP_ERR_NOMEM, "out of memory");
            else
                rc = account(y, m->value, &mark);
        }
    }
    free(srcs);
    if (rc == 0) {
        const char *dup = NULL;
        int crc = mp_json_object_close(y->doc, obj, &dup);
        if (crc == MP_ERR_PARSE) {
            /* Point at the second occurrence of the key. */
            yaml_mark_t at = mark;
            for (size_t i = obj->u.obj.n; i-- > 0;)
                if (strcmp(obj->u.obj.members[i].key, dup) == 0 && obj->u.obj.members[i].line) {
                    at.line = obj->u.obj.members[i].line - 1;
                    at.column = mark.column;
                    break;
                }
            rc = fail_at(y, &at, MP_ERR_PARSE, "duplicate key \"%s\" in mapping", dup);
        } else if (crc != 0)
            rc = fail_at(y, &mark, MP_ERR_NOMEM, "out of memory");
    }
    if (rc == 0 && add_anchor(y, anchor, obj) != 0)
        rc = fail_at(y, &mark, MP_ERR_NOMEM, "out of memory");
    return rc;
}

static int parse_node(struct yctx *y, yaml_event_t *ev, struct mp_json **out)
{
    int rc;
    switch (ev->type) {
    case YAML_ALIAS_EVENT: {
        struct mp_json *n = find_anchor(y, (const char *)ev->data.alias.anchor);
        if (n == NULL)
            return fail_at(y, &ev->start_mark, MP_ERR_PARSE, "unknown anchor \"%s\"",
                           (const char *)ev->data.alias.anchor);
        *out = n;
        return account(y, n, &ev->start_mark);
    }
    case YAML_SCALAR_EVENT: return parse_scalar(y, ev, out);
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT:
        if (++y->depth > y->max_depth) {
            y->depth--;
            return fail_at(y, &ev->start_mark, MP_ERR_LIMIT, "nesting too deep");
        }
        if (++y->nodes > y->max_nodes)
            return fail_at(y, &ev->start_mark, MP_ERR_LIMIT, "document has too many nodes");
        rc = ev->type == YAML_SEQUENCE_START_EVENT ? parse_sequence(y, ev, out)
                                                   : parse_mapping(y, ev, out);
        y->depth--;
        return rc;
    default: return fail_at(y, &ev->start_mark, MP_ERR_PARSE, "unexpected YAML event");
    }
}

int mp_yaml_parse(const char *text, size_t len, const struct mp_json_limits *lim,
                  struct mp_json_doc **out, char **err)
{
    struct yctx y = {
        .max_nodes = lim && lim->max_nodes ? lim->max_nodes : DEFAULT_MAX_NODES,
        .max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_MAX_DEPTH,
        .err = err,
    };
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : DEFAULT_MAX_BYTES;
    if (len > max_bytes) {
        mp_set_err(err, "document is %zu bytes, more than the limit of %zu", len, max_bytes);
        return MP_ERR_LIMIT;
    }
    y.doc = mp_json_doc_new();
    if (y.doc == NULL || !yaml_parser_initialize(&y.parser)) {
        mp_json_doc_free(y.doc);
        return MP_ERR_NOMEM;
    }
    yaml_parser_set_input_string(&y.parser, (const unsigned char *)text, len);
    struct mp_json *root = NULL;
    int docs = 0;
    for (;;) {
        yaml_event_t ev;
        if (next_event(&y, &ev) != 0)
            break;
        yaml_event_type_t t = ev.type;
        if (t == YAML_STREAM_END_EVENT) {
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_DOCUMENT_START_EVENT && ++docs > 1) {
            fail_at(&y, &ev.start_mark, MP_ERR_PARSE,
                    "more than one YAML document; a config file holds one");
            yaml_event_delete(&ev);
            break;
        }
        if (t == YAML_SCALAR_EVENT || t == YAML_SEQUENCE_START_EVENT ||
            t == YAML_MAPPING_START_EVENT || t == YAML_ALIAS_EVENT) {
            int rc = parse_node(&y, &ev, &root);
            yaml_event_delete(&ev);
            if (rc != 0)
                break;
            continue;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&y.parser);
    for (size_t i = 0; i < y.n_anchors; i++)
        free(y.anchors[i].name);
    free(y.anchors);
    if (y.rc != 0) {
        mp_json_doc_free(y.doc);
        return y.rc;
    }
    mp_json_doc_set_root(y.doc, root);
    *out = y.doc;
    return 0;
}

int mp_pb_from_yaml(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                    unsigned flags, ProtobufCMessage **out, char **err)
{
    struct mp_json_doc *doc;
    int rc = mp_yaml_parse(text, len, NULL, &doc, err);
    if (rc != 0)
        return rc;
    rc = mp_pb_from_json_node(mp_json_doc_root(doc), desc, flags, out, err);
    mp_json_doc_free(doc);
    return rc;
}

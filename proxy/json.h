/*
 * json.h: a small, strict JSON (RFC 8259) parser producing a read-only DOM.
 *
 * The same DOM is what the YAML loader (pb_yaml.h) builds, so YAML and JSON
 * take one path into protobuf (pb_json.h). All nodes of one document live in
 * one arena owned by the mp_json_doc and are freed with it in one go.
 */
#ifndef MP_JSON_H
#define MP_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mp_json_type {
    MP_JSON_NULL,
    MP_JSON_BOOL,
    MP_JSON_NUMBER, /* str holds the number's text exactly as written */
    MP_JSON_STRING, /* str holds the decoded UTF-8 (may contain NUL) */
    MP_JSON_ARRAY,
    MP_JSON_OBJECT,
    /* A YAML plain (unquoted) scalar: its type (null, bool, number, string)
     * is decided by the field it lands in, per the YAML 1.2 core schema. */
    MP_JSON_PLAIN,
};

struct mp_json;

struct mp_json_member {
    const char *key; /* NUL-terminated; key_len excludes the NUL */
    size_t key_len;
    struct mp_json *value;
    uint32_t line; /* line of the key, 0 when unknown */
};

struct mp_json {
    enum mp_json_type type;
    uint32_t line; /* 1-based source line, 0 when unknown */
    /* Nesting below and including this node (1 for a scalar), and the nodes
     * in its subtree counting shared (YAML alias) nodes once per use;
     * weight saturates at UINT32_MAX. They bound the work of a walk. */
    uint32_t height, weight;
    union {
        bool boolean;
        struct {
            const char *s; /* NUL-terminated */
            size_t len;
        } str; /* NUMBER, STRING, PLAIN */
        struct {
            struct mp_json **items;
            size_t n, cap;
        } arr;
        struct {
            struct mp_json_member *members; /* in document order */
            size_t n, cap;
            uint32_t *sorted; /* member indices sorted by key; set when closed */
        } obj;
    } u;
};

/* Limits against hostile input. Zero in a field means "use the default". */
struct mp_json_limits {
    size_t max_bytes;   /* input size; default 64 MiB */
    unsigned max_depth; /* nesting of arrays/objects; default 128 */
    size_t max_nodes;   /* nodes, counting YAML alias expansions; default 4M */
};

struct mp_json_doc;

/**
 * Parses JSON text (exactly one value, surrounded by optional whitespace).
 * On success stores a new document in *out (free with mp_json_doc_free) and
 * returns 0. On failure returns MP_ERR_PARSE (or MP_ERR_LIMIT, MP_ERR_NOMEM)
 * and, when err is not NULL, a malloc'd message such as
 * "line 3 column 7: expected ',' or '}'" in *err. lim may be NULL.
 */
int mp_json_parse(const char *text, size_t len, const struct mp_json_limits *lim,
                  struct mp_json_doc **out, char **err);

/** Root node of a document (never NULL for a parsed document). */
const struct mp_json *mp_json_doc_root(const struct mp_json_doc *doc);

/** Frees a document and every node in it. NULL is allowed. */
void mp_json_doc_free(struct mp_json_doc *doc);

/**
 * Looks a key up in an object node (binary search over the sorted index once
 * the object is closed). Returns the value or NULL when absent or when obj is
 * not an object.
 */
const struct mp_json *mp_json_object_get(const struct mp_json *obj, const char *key);

/** Name of a node type for error messages ("object", "string", ...). */
const char *mp_json_type_name(enum mp_json_type t);

/*
 * Builder interface, used by the YAML loader. Nodes come from the
 * document's arena; a failed call returns NULL / MP_ERR_NOMEM and leaves the
 * document valid for mp_json_doc_free.
 */

/** New empty document; its root is set with mp_json_doc_set_root. NULL on OOM. */
struct mp_json_doc *mp_json_doc_new(void);

/** Sets the document's root node. */
void mp_json_doc_set_root(struct mp_json_doc *doc, struct mp_json *root);

/** New node of type t. For NUMBER, STRING and PLAIN, s/len are copied. */
struct mp_json *mp_json_node_new(struct mp_json_doc *doc, enum mp_json_type t, const char *s,
                                 size_t len, uint32_t line);

/** Appends item to array node arr. Returns 0 or MP_ERR_NOMEM. */
int mp_json_array_append(struct mp_json_doc *doc, struct mp_json *arr, struct mp_json *item);

/**
 * Appends key/value to object node obj (key copied; line is the key's line).
 * No duplicate check here: mp_json_object_close does it. Returns 0 or
 * MP_ERR_NOMEM.
 */
int mp_json_object_append(struct mp_json_doc *doc, struct mp_json *obj, const char *key,
                          size_t key_len, struct mp_json *value, uint32_t line);

/**
 * Finishes an object: builds its sorted key index. Returns 0, MP_ERR_NOMEM,
 * or MP_ERR_PARSE when a key occurs twice (the key is stored in *dup_key,
 * pointing into the document, when dup_key is not NULL).
 */
int mp_json_object_close(struct mp_json_doc *doc, struct mp_json *obj, const char **dup_key);

/** Allocates n bytes from the document's arena (freed with the document). */
void *mp_json_doc_alloc(struct mp_json_doc *doc, size_t n);

#endif

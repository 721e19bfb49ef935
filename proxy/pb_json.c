/*
 * pb_json.c: JSON DOM -> protobuf-c message, following the proto3 JSON
 * mapping, driven by descriptors.
 *
 * The message under construction is always valid for
 * protobuf_c_message_free_unpacked: every allocation is linked into it
 * (sub-message pointer, array with its count already raised, oneof case
 * already set) before it is filled, so one free unwinds any failure.
 */
#include "pb_json.h"

#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/any.pb-c.h"
#include "google/protobuf/duration.pb-c.h"
#include "google/protobuf/struct.pb-c.h"
#include "google/protobuf/timestamp.pb-c.h"
#include "mp_common.h"
#include "pb_json_util.h"
#include "type_registry.h"

struct ctx {
    unsigned flags;
    char **err;
    char *path; /* "static_resources.clusters[2]" */
    size_t path_len, path_cap;
};

/* ---- path and errors ----------------------------------------------------- */

static int path_push(struct ctx *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int path_push(struct ctx *c, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(c->path + c->path_len, c->path_cap - c->path_len, fmt, ap);
        va_end(ap);
        if (n < 0)
            return MP_ERR_INVAL;
        if (c->path_len + (size_t)n < c->path_cap) {
            c->path_len += (size_t)n;
            return 0;
        }
        size_t cap = (c->path_cap + (size_t)n) * 2;
        char *p = realloc(c->path, cap);
        if (p == NULL)
            return MP_ERR_NOMEM;
        c->path = p;
        c->path_cap = cap;
    }
}

static void path_pop(struct ctx *c, size_t mark)
{
    c->path_len = mark;
    c->path[mark] = '\0';
}

static int push_field(struct ctx *c, const char *name)
{
    return path_push(c, c->path_len == 0 ? "%s" : ".%s", name);
}

static int fail(struct ctx *c, const struct mp_json *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *c, const struct mp_json *n, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    char line[32] = "";
    if (n != NULL && n->line > 0)
        snprintf(line, sizeof(line), " (line %u)", n->line);
    if (c->path_len > 0)
        mp_set_err(c->err, "%s: %s%s", c->path, msg, line);
    else
        mp_set_err(c->err, "%s%s", msg, line);
    return MP_ERR_INVAL;
}

static int oom(struct ctx *c)
{
    mp_set_err(c->err, "out of memory");
    return MP_ERR_NOMEM;
}

/* ---- scalar classification (JSON types and YAML 1.2 core schema) --------- */

static bool is_plain(const struct mp_json *n, const char *const *words)
{
    if (n->type != MP_JSON_PLAIN)
        return false;
    for (; *words != NULL; words++)
        if (strcmp(n->u.str.s, *words) == 0)
            return true;
    return false;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"true", "True", "TRUE", NULL};
static const char *const false_words[] = {"false", "False", "FALSE", NULL};

static bool node_is_null(const struct mp_json *n)
{
    return n->type == MP_JSON_NULL || is_plain(n, null_words);
}

/* Shows a node's text in an error message, truncated. */
static const char *show(const struct mp_json *n, char *buf, size_t cap)
{
    switch (n->type) {
    case MP_JSON_STRING:
    case MP_JSON_PLAIN:
    case MP_JSON_NUMBER:
        if (n->u.str.len > 60)
            snprintf(buf, cap, "\"%.57s...\"", n->u.str.s ? n->u.str.s : "");
        else
            snprintf(buf, cap, "\"%s\"", n->u.str.s ? n->u.str.s : "");
        return buf;
    case MP_JSON_BOOL: return n->u.boolean ? "true" : "false";
    default: snprintf(buf, cap, "%s", mp_json_type_name(n->type)); return buf;
    }
}

/* Magnitude and sign of an integer written as text. YAML plain scalars may
 * also use 0x / 0o and a leading '+'. Exponent forms ("1e3") are accepted
 * when the value is integral, as the proto3 mapping allows. */
static int parse_integer_text(const char *s, bool plain, bool *neg, uint64_t *mag)
{
    const char *p = s;
    *neg = false;
    if (*p == '-') {
        *neg = true;
        p++;
    } else if (*p == '+' && plain) {
        p++;
    }
    unsigned base = 10;
    if (plain && p[0] == '0' && (p[1] == 'x' || p[1] == 'o') && !*neg && p == s) {
        base = p[1] == 'x' ? 16 : 8;
        p += 2;
    }
    if (*p == '\0')
        return MP_ERR_INVAL;
    uint64_t v = 0;
    const char *digits = p;
    for (; *p != '\0'; p++) {
        unsigned d;
        char ch = *p;
        if (ch >= '0' && ch <= '9')
            d = (unsigned)(ch - '0');
        else if (base == 16 && ch >= 'a' && ch <= 'f')
            d = (unsigned)(ch - 'a' + 10);
        else if (base == 16 && ch >= 'A' && ch <= 'F')
            d = (unsigned)(ch - 'A' + 10);
        else
            break;
        if (d >= base)
            return MP_ERR_INVAL;
        if (v > (UINT64_MAX - d) / base)
            return MP_ERR_LIMIT;
        v = v * base + d;
    }
    if (*p == '\0') {
        *mag = v;
        return 0;
    }
    if (base != 10 || p == digits)
        return MP_ERR_INVAL;
    /* 1.0, 1e3, 2.5e2: go through double, demand an exact integer. */
    for (const char *q = p; *q != '\0'; q++)
        if (!strchr("0123456789.eE+-", *q))
            return MP_ERR_INVAL;
    char *end;
    double d = strtod(digits, &end);
    if (*end != '\0' || !isfinite(d) || d != floor(d))
        return MP_ERR_INVAL;
    if (d >= 18446744073709551616.0)
        return MP_ERR_LIMIT;
    *mag = (uint64_t)d;
    return 0;
}

/* Text of a node that may hold a number: JSON numbers, quoted numbers (the
 * proto3 mapping allows them for every numeric type), YAML plain scalars. */
static const char *number_text(const struct mp_json *n)
{
    if (n->type == MP_JSON_NUMBER || n->type == MP_JSON_STRING || n->type == MP_JSON_PLAIN)
        return n->u.str.s;
    return NULL;
}

static int get_int(struct ctx *c, const struct mp_json *n, int64_t min, uint64_t max,
                   bool is_signed, int64_t *sv, uint64_t *uv)
{
    char b[80];
    const char *s = number_text(n);
    if (s == NULL)
        return fail(c, n, "expected an integer, got %s", show(n, b, sizeof(b)));
    bool neg;
    uint64_t mag;
    int rc = parse_integer_text(s, n->type == MP_JSON_PLAIN, &neg, &mag);
    if (rc == MP_ERR_INVAL)
        return fail(c, n, "invalid integer %s", show(n, b, sizeof(b)));
    if (rc != 0 || (!neg && mag > max) || (neg && !is_signed && mag != 0) ||
        (neg && mag > (uint64_t)(-(min + 1)) + 1))
        return fail(c, n, "integer %s out of range", show(n, b, sizeof(b)));
    if (is_signed)
        *sv = neg ? (mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag) : (int64_t)mag;
    else
        *uv = mag;
    return 0;
}

/* Double from JSON number, quoted number, "NaN"/"Infinity"/"-Infinity", or a
 * YAML core-schema float (.inf, -.inf, .nan, 0x.., 0o..). */
static int get_double(struct ctx *c, const struct mp_json *n, double *out)
{
    char b[80];
    const char *s = number_text(n);
    if (s == NULL)
        return fail(c, n, "expected a number, got %s", show(n, b, sizeof(b)));
    if (n->type != MP_JSON_NUMBER) {
        static const char *const nan_words[] = {"NaN", ".nan", ".NaN", ".NAN", NULL};
        static const char *const inf_words[] = {"Infinity", ".inf",  ".Inf",  ".INF",
                                                "+.inf",    "+.Inf", "+.INF", NULL};
        static const char *const ninf_words[] = {"-Infinity", "-.inf", "-.Inf", "-.INF", NULL};
        for (int i = 0; nan_words[i]; i++)
            if (strcmp(s, nan_words[i]) == 0 && (i == 0 || n->type == MP_JSON_PLAIN))
                return *out = NAN, 0;
        for (int i = 0; inf_words[i]; i++)
            if (strcmp(s, inf_words[i]) == 0 && (i == 0 || n->type == MP_JSON_PLAIN))
                return *out = INFINITY, 0;
        for (int i = 0; ninf_words[i]; i++)
            if (strcmp(s, ninf_words[i]) == 0 && (i == 0 || n->type == MP_JSON_PLAIN))
                return *out = -INFINITY, 0;
        if (n->type == MP_JSON_PLAIN && (strncmp(s, "0x", 2) == 0 || strncmp(s, "0o", 2) == 0)) {
            bool neg;
            uint64_t mag;
            if (parse_integer_text(s, true, &neg, &mag) != 0)
                return fail(c, n, "invalid number %s", show(n, b, sizeof(b)));
            *out = (double)mag;
            return 0;
        }
    }
    if (*s == '\0')
        return fail(c, n, "invalid number %s", show(n, b, sizeof(b)));
    for (const char *q = s; *q != '\0'; q++)
        if (!strchr("0123456789.eE+-", *q))
            return fail(c, n, "invalid number %s", show(n, b, sizeof(b)));
    char *end;
    double d = strtod(s, &end);
    if (*end != '\0')
        return fail(c, n, "invalid number %s", show(n, b, sizeof(b)));
    if (!isfinite(d))
        return fail(c, n, "number %s out of range", show(n, b, sizeof(b)));
    *out = d;
    return 0;
}

static int get_bool(struct ctx *c, const struct mp_json *n, bool *out)
{
    char b[80];
    if (n->type == MP_JSON_BOOL) {
        *out = n->u.boolean;
        return 0;
    }
    if (is_plain(n, true_words) || is_plain(n, false_words)) {
        *out = is_plain(n, true_words);
        return 0;
    }
    return fail(c, n, "expected true or false, got %s", show(n, b, sizeof(b)));
}

/* Strings: JSON strings and YAML scalars of any plain form ("1.0" stays text
 * in a string field). Embedded NUL cannot live in a C string: rejected. */
static int get_string(struct ctx *c, const struct mp_json *n, const char **s)
{
    char b[80];
    if (n->type != MP_JSON_STRING && n->type != MP_JSON_PLAIN)
        return fail(c, n, "expected a string, got %s", show(n, b, sizeof(b)));
    if (strlen(n->u.str.s) != n->u.str.len)
        return fail(c, n, "string contains a NUL character");
    *s = n->u.str.s;
    return 0;
}

static int dup_string(struct ctx *c, const struct mp_json *n, char **out)
{
    const char *s = NULL;
    int rc = get_string(c, n, &s);
    if (rc != 0)
        return rc;
    char *d = strdup(s);
    if (d == NULL)
        return oom(c);
    *out = d;
    return 0;
}

/* ---- messages ------------------------------------------------------------ */

static int parse_message(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg);
static int parse_fields(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg,
                        const char *skip_key);

static ProtobufCMessage *message_new(const ProtobufCMessageDescriptor *d)
{
    ProtobufCMessage *m = malloc(d->sizeof_message);
    if (m != NULL)
        protobuf_c_message_init(d, m);
    return m;
}

static int parse_enum(struct ctx *c, const struct mp_json *n, const ProtobufCEnumDescriptor *ed,
                      int *out)
{
    char b[80];
    if (n->type == MP_JSON_STRING || n->type == MP_JSON_PLAIN) {
        const ProtobufCEnumValue *v = protobuf_c_enum_descriptor_get_value_by_name(ed, n->u.str.s);
        if (v != NULL) {
            *out = v->value;
            return 0;
        }
    }
    if (n->type == MP_JSON_NUMBER || n->type == MP_JSON_PLAIN) {
        bool neg;
        uint64_t mag;
        if (parse_integer_text(n->u.str.s, n->type == MP_JSON_PLAIN, &neg, &mag) == 0 &&
            mag <= (neg ? 2147483648u : 2147483647u)) {
            /* proto3 enums are open: unknown numbers are kept. */
            *out = neg ? (int)(-(int64_t)mag) : (int)mag;
            return 0;
        }
    }
    if (c->flags & MP_PB_JSON_IGNORE_UNKNOWN) {
        *out = ed->n_values > 0 ? ed->values[0].value : 0;
        return 1; /* ignored: caller leaves the field unset */
    }
    return fail(c, n, "unknown value %s for enum %s", show(n, b, sizeof(b)), ed->name);
}

/* Parses node n into the storage of one value of field f at slot. */
static int parse_value(struct ctx *c, const struct mp_json *n, const ProtobufCFieldDescriptor *f,
                       void *slot)
{
    int64_t sv = 0;
    uint64_t uv = 0;
    int rc;
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
        if ((rc = get_int(c, n, INT32_MIN, INT32_MAX, true, &sv, &uv)) != 0)
            return rc;
        *(int32_t *)slot = (int32_t)sv;
        return 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
        if ((rc = get_int(c, n, INT64_MIN, INT64_MAX, true, &sv, &uv)) != 0)
            return rc;
        *(int64_t *)slot = sv;
        return 0;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32:
        if ((rc = get_int(c, n, 0, UINT32_MAX, false, &sv, &uv)) != 0)
            return rc;
        *(uint32_t *)slot = (uint32_t)uv;
        return 0;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        if ((rc = get_int(c, n, 0, UINT64_MAX, false, &sv, &uv)) != 0)
            return rc;
        *(uint64_t *)slot = uv;
        return 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        double d;
        if ((rc = get_double(c, n, &d)) != 0)
            return rc;
        if (isfinite(d) && fabs(d) > 3.4028234663852886e38) {
            char b[80];
            return fail(c, n, "number %s out of range for float", show(n, b, sizeof(b)));
        }
        /* strtof, not (float)strtod: double rounding could pick the other
         * neighbour and break exact round trips. */
        const char *t = n->u.str.s;
        bool radix = n->type == MP_JSON_PLAIN && t[0] == '0' && (t[1] == 'x' || t[1] == 'o');
        *(float *)slot = isfinite(d) && !radix ? strtof(t, NULL) : (float)d;
        return 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: return get_double(c, n, (double *)slot);
    case PROTOBUF_C_TYPE_BOOL: {
        bool b;
        if ((rc = get_bool(c, n, &b)) != 0)
            return rc;
        *(protobuf_c_boolean *)slot = b;
        return 0;
    }
    case PROTOBUF_C_TYPE_ENUM: {
        int v = 0;
        rc = parse_enum(c, n, f->descriptor, &v);
        if (rc < 0)
            return rc;
        *(int *)slot = v;
        return 0;
    }
    case PROTOBUF_C_TYPE_STRING: {
        char *s;
        if ((rc = dup_string(c, n, &s)) != 0)
            return rc;
        *(char **)slot = s;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const char *s = NULL;
        if ((rc = get_string(c, n, &s)) != 0)
            return rc;
        ProtobufCBinaryData *bd = slot;
        rc = mp_base64_decode(s, n->u.str.len, &bd->data, &bd->len);
        if (rc == MP_ERR_NOMEM)
            return oom(c);
        if (rc != 0) {
            char b[80];
            return fail(c, n, "invalid base64 %s", show(n, b, sizeof(b)));
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        ProtobufCMessage *m = message_new(f->descriptor);
        if (m == NULL)
            return oom(c);
        *(ProtobufCMessage **)slot = m;
        return parse_message(c, n, m);
    }
    }
    return fail(c, n, "unsupported field type");
}

static bool is_value_type(const ProtobufCFieldDescriptor *f)
{
    return f->type == PROTOBUF_C_TYPE_MESSAGE && mp_pb_wkt_of(f->descriptor) == MP_PB_WKT_VALUE;
}

static int parse_repeated(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg,
                          const ProtobufCFieldDescriptor *f)
{
    char b[80];
    if (n->type != MP_JSON_ARRAY)
        return fail(c, n, "expected an array, got %s", show(n, b, sizeof(b)));
    size_t count = n->u.arr.n;
    size_t *n_out = (size_t *)((char *)msg + f->quantifier_offset);
    void **arr_out = (void **)((char *)msg + f->offset);
    if (count == 0)
        return 0;
    size_t esz = mp_pb_value_size(f->type);
    char *arr = calloc(count, esz);
    if (arr == NULL)
        return oom(c);
    *arr_out = arr;
    *n_out = 0;
    size_t mark = c->path_len;
    for (size_t i = 0; i < count; i++) {
        const struct mp_json *item = n->u.arr.items[i];
        if (path_push(c, "[%zu]", i) != 0)
            return oom(c);
        if (node_is_null(item) && !is_value_type(f))
            return fail(c, item, "null is not allowed in a repeated field");
        (*n_out)++;
        int rc = parse_value(c, item, f, arr + i * esz);
        if (rc > 0) { /* ignored unknown enum value: drop the element */
            (*n_out)--;
            rc = 0;
        }
        if (rc != 0)
            return rc;
        path_pop(c, mark);
    }
    return 0;
}

static int parse_map_key(struct ctx *c, const struct mp_json *keynode,
                         const ProtobufCFieldDescriptor *kf, void *slot)
{
    if (kf->type == PROTOBUF_C_TYPE_BOOL) {
        const char *k = keynode->u.str.s;
        if (strcmp(k, "true") != 0 && strcmp(k, "false") != 0)
            return fail(c, keynode, "map key \"%s\" is not a bool", k);
        *(protobuf_c_boolean *)slot = k[0] == 't';
        return 0;
    }
    /* Every other key type reads its text the way a quoted value reads. */
    return parse_value(c, keynode, kf, slot);
}

static int parse_map(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg,
                     const ProtobufCFieldDescriptor *f)
{
    char b[80];
    if (n->type != MP_JSON_OBJECT)
        return fail(c, n, "expected an object (map), got %s", show(n, b, sizeof(b)));
    size_t count = n->u.obj.n;
    if (count == 0)
        return 0;
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    size_t *n_out = (size_t *)((char *)msg + f->quantifier_offset);
    ProtobufCMessage **arr = calloc(count, sizeof(*arr));
    if (arr == NULL)
        return oom(c);
    *(ProtobufCMessage ***)((char *)msg + f->offset) = arr;
    *n_out = 0;
    size_t mark = c->path_len;
    for (size_t i = 0; i < count; i++) {
        const struct mp_json_member *m = &n->u.obj.members[i];
        if (path_push(c, "[\"%s\"]", m->key) != 0)
            return oom(c);
        ProtobufCMessage *e = message_new(ed);
        if (e == NULL)
            return oom(c);
        arr[(*n_out)++] = e;
        struct mp_json keynode = {.type = MP_JSON_STRING, .line = m->value->line};
        keynode.u.str.s = m->key;
        keynode.u.str.len = m->key_len;
        int rc = parse_map_key(c, &keynode, kf, (char *)e + kf->offset);
        if (rc != 0)
            return rc;
        if (node_is_null(m->value) && !is_value_type(vf))
            return fail(c, m->value, "null is not allowed as a map value");
        rc = parse_value(c, m->value, vf, (char *)e + vf->offset);
        if (rc > 0)
            rc = 0;
        if (rc != 0)
            return rc;
        path_pop(c, mark);
    }
    return 0;
}

static int parse_singular(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg,
                          const ProtobufCFieldDescriptor *f)
{
    void *slot = (char *)msg + f->offset;
    if (node_is_null(n) && !is_value_type(f))
        return 0; /* null means "not set" */
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
        uint32_t *which = (uint32_t *)((char *)msg + f->quantifier_offset);
        if (*which != 0 && *which != f->id) {
            const ProtobufCFieldDescriptor *other =
                protobuf_c_message_descriptor_get_field(msg->descriptor, *which);
            return fail(c, n, "oneof conflict: \"%s\" and \"%s\" are both set; only one is allowed",
                        other != NULL ? other->name : "?", f->name);
        }
        *which = f->id;
    }
    int rc = parse_value(c, n, f, slot);
    if (rc > 0) { /* unknown enum value ignored */
        if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
            *(uint32_t *)((char *)msg + f->quantifier_offset) = 0;
        return 0;
    }
    if (rc == 0 && f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
        *(protobuf_c_boolean *)((char *)msg + f->quantifier_offset) = 1;
    return rc;
}

/* A node that only carries a member's key line, for error positions. */
static const struct mp_json *key_node(const struct mp_json_member *m)
{
    static _Thread_local struct mp_json k;
    k.line = m->line != 0 ? m->line : m->value->line;
    return &k;
}

static int parse_fields(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg,
                        const char *skip_key)
{
    char b[80];
    const ProtobufCMessageDescriptor *d = msg->descriptor;
    if (n->type != MP_JSON_OBJECT)
        return fail(c, n, "expected an object (%s), got %s", d->name, show(n, b, sizeof(b)));
    /* Which fields this object already set, to catch "connect_timeout" and
     * "connectTimeout" both given. */
    uint8_t seen_small[64] = {0};
    uint8_t *seen = seen_small;
    if (d->n_fields > sizeof(seen_small)) {
        seen = calloc(d->n_fields, 1);
        if (seen == NULL)
            return oom(c);
    }
    int rc = 0;
    size_t mark = c->path_len;
    for (size_t i = 0; i < n->u.obj.n && rc == 0; i++) {
        const struct mp_json_member *m = &n->u.obj.members[i];
        if (skip_key != NULL && strcmp(m->key, skip_key) == 0)
            continue;
        const ProtobufCFieldDescriptor *f = mp_pb_field_find(d, m->key);
        if (f == NULL) {
            if (c->flags & MP_PB_JSON_IGNORE_UNKNOWN)
                continue;
            if (push_field(c, m->key) != 0)
                rc = oom(c);
            else
                rc = fail(c, key_node(m), "unknown field in %s", d->name);
            break;
        }
        size_t fi = (size_t)(f - d->fields);
        if (push_field(c, f->name) != 0) {
            rc = oom(c);
            break;
        }
        if (seen[fi]) {
            rc = fail(c, key_node(m), "field is set twice (by its proto name and its JSON name)");
            break;
        }
        seen[fi] = 1;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            if (node_is_null(m->value))
                rc = 0;
            else if (mp_pb_field_is_map(d, f))
                rc = parse_map(c, m->value, msg, f);
            else
                rc = parse_repeated(c, m->value, msg, f);
        } else {
            rc = parse_singular(c, m->value, msg, f);
        }
        if (rc == 0)
            path_pop(c, mark);
    }
    if (seen != seen_small)
        free(seen);
    return rc;
}

/* ---- well-known types ---------------------------------------------------- */

static int parse_any(struct ctx *c, const struct mp_json *n, Google__Protobuf__Any *any)
{
    char b[80];
    if (n->type != MP_JSON_OBJECT)
        return fail(c, n, "expected an object (google.protobuf.Any), got %s",
                    show(n, b, sizeof(b)));
    const struct mp_json *t = mp_json_object_get(n, "@type");
    if (t == NULL) {
        if (n->u.obj.n == 0)
            return 0;
        return fail(c, n, "Any is missing \"@type\"");
    }
    const char *url = NULL;
    int rc = get_string(c, t, &url);
    if (rc != 0)
        return rc;
    const ProtobufCMessageDescriptor *d = mp_type_registry_find(url);
    if (strchr(url, '/') == NULL)
        return fail(c, t, "unknown type \"%s\" in Any (expected type.googleapis.com/<name>)", url);
    if (d == NULL && !(c->flags & MP_PB_JSON_IGNORE_UNKNOWN))
        return fail(c, t, "unknown type \"%s\" in Any", url);
    char *url_copy = strdup(url);
    if (url_copy == NULL)
        return oom(c);
    any->type_url = url_copy;
    if (d == NULL) {
        /* Ignoring unknowns: the type URL stays, with an empty value, so the
         * code that consumes this Any can still say which extension it
         * does not have (or skip it when it is optional). */
        return 0;
    }
    ProtobufCMessage *inner = message_new(d);
    if (inner == NULL)
        return oom(c);
    if (mp_pb_wkt_of(d) != MP_PB_WKT_NONE) {
        /* Well-known types sit under "value" in their own JSON form. */
        for (size_t i = 0; i < n->u.obj.n; i++) {
            const char *k = n->u.obj.members[i].key;
            if (strcmp(k, "@type") != 0 && strcmp(k, "value") != 0 &&
                !(c->flags & MP_PB_JSON_IGNORE_UNKNOWN)) {
                size_t mark = c->path_len;
                if (push_field(c, k) != 0)
                    rc = oom(c);
                else
                    rc = fail(c, n->u.obj.members[i].value, "unknown field in Any of %s", d->name);
                path_pop(c, mark);
                goto out;
            }
        }
        const struct mp_json *v = mp_json_object_get(n, "value");
        if (v != NULL) {
            size_t mark = c->path_len;
            if (push_field(c, "value") != 0) {
                rc = oom(c);
                goto out;
            }
            rc = parse_message(c, v, inner);
            if (rc != 0)
                goto out;
            path_pop(c, mark);
        }
    } else {
        rc = parse_fields(c, n, inner, "@type");
        if (rc != 0)
            goto out;
    }
    size_t size = protobuf_c_message_get_packed_size(inner);
    any->value.data = malloc(size > 0 ? size : 1);
    if (any->value.data == NULL) {
        rc = oom(c);
        goto out;
    }
    any->value.len = protobuf_c_message_pack(inner, any->value.data);
out:
    protobuf_c_message_free_unpacked(inner, NULL);
    return rc;
}

static int parse_struct(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg)
{
    return parse_map(c, n, msg, &msg->descriptor->fields[0]);
}

static int parse_value_wkt(struct ctx *c, const struct mp_json *n, Google__Protobuf__Value *v)
{
    int rc = 0;
    switch (n->type) {
    case MP_JSON_NULL:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE;
        v->null_value = GOOGLE__PROTOBUF__NULL_VALUE__NULL_VALUE;
        return 0;
    case MP_JSON_BOOL:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
        v->bool_value = n->u.boolean;
        return 0;
    case MP_JSON_NUMBER:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
        return get_double(c, n, &v->number_value);
    case MP_JSON_STRING:
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        return dup_string(c, n, &v->string_value);
    case MP_JSON_PLAIN: {
        bool b;
        double d;
        if (node_is_null(n))
            return parse_value_wkt(c, &(struct mp_json){.type = MP_JSON_NULL}, v);
        if (is_plain(n, true_words) || is_plain(n, false_words)) {
            get_bool(c, n, &b);
            v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE;
            v->bool_value = b;
            return 0;
        }
        /* Core schema numbers; anything else is a string. Probe quietly. */
        char **saved = c->err;
        c->err = NULL;
        rc = get_double(c, n, &d);
        c->err = saved;
        if (rc == 0 && n->u.str.s[0] != '\0' && strcmp(n->u.str.s, "NaN") != 0 &&
            strcmp(n->u.str.s, "Infinity") != 0 && strcmp(n->u.str.s, "-Infinity") != 0) {
            v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
            v->number_value = d;
            return 0;
        }
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
        return dup_string(c, n, &v->string_value);
    }
    case MP_JSON_ARRAY: {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE;
        ProtobufCMessage *l = message_new(&google__protobuf__list_value__descriptor);
        if (l == NULL)
            return oom(c);
        v->list_value = (Google__Protobuf__ListValue *)l;
        return parse_repeated(c, n, l, &l->descriptor->fields[0]);
    }
    case MP_JSON_OBJECT: {
        v->kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE;
        ProtobufCMessage *s = message_new(&google__protobuf__struct__descriptor);
        if (s == NULL)
            return oom(c);
        v->struct_value = (Google__Protobuf__Struct *)s;
        return parse_struct(c, n, s);
    }
    }
    return rc;
}

static int parse_message(struct ctx *c, const struct mp_json *n, ProtobufCMessage *msg)
{
    char b[80];
    const char *s = NULL;
    int rc;
    switch (mp_pb_wkt_of(msg->descriptor)) {
    case MP_PB_WKT_ANY: return parse_any(c, n, (Google__Protobuf__Any *)msg);
    case MP_PB_WKT_DURATION: {
        Google__Protobuf__Duration *d = (Google__Protobuf__Duration *)msg;
        if (n->type != MP_JSON_STRING && n->type != MP_JSON_PLAIN)
            return fail(c, n, "invalid duration %s (expected a string like \"1.5s\")",
                        show(n, b, sizeof(b)));
        if ((rc = get_string(c, n, &s)) != 0)
            return rc;
        if (mp_pb_duration_parse(s, &d->seconds, &d->nanos) != 0)
            return fail(c, n, "invalid duration %s (expected a string like \"1.5s\")",
                        show(n, b, sizeof(b)));
        return 0;
    }
    case MP_PB_WKT_TIMESTAMP: {
        Google__Protobuf__Timestamp *t = (Google__Protobuf__Timestamp *)msg;
        if (n->type != MP_JSON_STRING && n->type != MP_JSON_PLAIN)
            return fail(c, n, "invalid timestamp %s (expected RFC 3339)", show(n, b, sizeof(b)));
        if ((rc = get_string(c, n, &s)) != 0)
            return rc;
        if (mp_pb_timestamp_parse(s, &t->seconds, &t->nanos) != 0)
            return fail(c, n, "invalid timestamp %s (expected RFC 3339)", show(n, b, sizeof(b)));
        return 0;
    }
    case MP_PB_WKT_STRUCT: return parse_struct(c, n, msg);
    case MP_PB_WKT_VALUE: return parse_value_wkt(c, n, (Google__Protobuf__Value *)msg);
    case MP_PB_WKT_LIST_VALUE: return parse_repeated(c, n, msg, &msg->descriptor->fields[0]);
    case MP_PB_WKT_WRAPPER: {
        const ProtobufCFieldDescriptor *f = &msg->descriptor->fields[0];
        if (n->type == MP_JSON_OBJECT || n->type == MP_JSON_ARRAY)
            return fail(c, n, "expected a bare value for %s, got %s", msg->descriptor->name,
                        mp_json_type_name(n->type));
        rc = parse_value(c, n, f, (char *)msg + f->offset);
        return rc > 0 ? 0 : rc;
    }
    case MP_PB_WKT_FIELD_MASK:
    case MP_PB_WKT_NONE: break;
    }
    return parse_fields(c, n, msg, NULL);
}

/* ---- entry points -------------------------------------------------------- */

int mp_pb_from_json_node(const struct mp_json *node, const ProtobufCMessageDescriptor *desc,
                         unsigned flags, ProtobufCMessage **out, char **err)
{
    struct ctx c = {.flags = flags, .err = err};
    c.path = malloc(128);
    if (c.path == NULL)
        return MP_ERR_NOMEM;
    c.path_cap = 128;
    c.path[0] = '\0';
    ProtobufCMessage *msg = message_new(desc);
    int rc = msg == NULL ? oom(&c) : parse_message(&c, node, msg);
    free(c.path);
    if (rc != 0) {
        protobuf_c_message_free_unpacked(msg, NULL);
        return rc;
    }
    *out = msg;
    return 0;
}

int mp_pb_from_json(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                    unsigned flags, ProtobufCMessage **out, char **err)
{
    struct mp_json_doc *doc;
    int rc = mp_json_parse(text, len, NULL, &doc, err);
    if (rc != 0)
        return rc;
    rc = mp_pb_from_json_node(mp_json_doc_root(doc), desc, flags, out, err);
    mp_json_doc_free(doc);
    return rc;
}

/*
 * pb_json_print.c: protobuf-c message -> JSON text (proto3 JSON mapping).
 * Output always parses back (pb_json.c) to the same packed bytes.
 */
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
#include "pb_json.h"
#include "pb_json_util.h"
#include "type_registry.h"

struct out {
    char *buf;
    size_t len, cap;
    unsigned flags;
    int depth;
    int rc;
    char **err;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->rc != 0)
        return;
    if (o->len + n + 1 > o->cap) {
        size_t cap = o->cap ? o->cap : 1024;
        while (cap < o->len + n + 1)
            cap *= 2;
        char *b = realloc(o->buf, cap);
        if (b == NULL) {
            o->rc = MP_ERR_NOMEM;
            return;
        }
        o->buf = b;
        o->cap = cap;
    }
    memcpy(o->buf + o->len, s, n);
    o->len += n;
    o->buf[o->len] = '\0';
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

static void putf(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void putf(struct out *o, const char *fmt, ...)
{
    char b[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b, sizeof(b), fmt, ap);
    va_end(ap);
    put(o, b, (size_t)MP_MIN(n, (int)sizeof(b) - 1));
}

static void fail(struct out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(struct out *o, const char *fmt, ...)
{
    if (o->rc != 0)
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    mp_set_err(o->err, "%s", msg);
    o->rc = MP_ERR_INVAL;
}

static void newline(struct out *o)
{
    if (!(o->flags & MP_PB_JSON_PRETTY))
        return;
    put(o, "\n", 1);
    for (int i = 0; i < o->depth; i++)
        put(o, "  ", 2);
}

/* Opens "{" or "["; members go through member_sep; close_ ends it. */
static void open_(struct out *o, char ch)
{
    put(o, &ch, 1);
    o->depth++;
}

static void member_sep(struct out *o, bool *first)
{
    if (!*first)
        put(o, ",", 1);
    *first = false;
    newline(o);
}

static void close_(struct out *o, char ch, bool empty)
{
    o->depth--;
    if (!empty)
        newline(o);
    put(o, &ch, 1);
}

static void put_string(struct out *o, const char *s, size_t n)
{
    put(o, "\"", 1);
    size_t run = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = NULL;
        char ubuf[8];
        size_t adv = 1;
        if (c == '"')
            esc = "\\\"";
        else if (c == '\\')
            esc = "\\\\";
        else if (c == '\n')
            esc = "\\n";
        else if (c == '\r')
            esc = "\\r";
        else if (c == '\t')
            esc = "\\t";
        else if (c < 0x20 || c == 0x7f) {
            snprintf(ubuf, sizeof(ubuf), "\\u%04x", c);
            esc = ubuf;
        } else if (c >= 0x80) {
            /* Pass valid UTF-8 through; replace bytes that are not (a
             * string from the wire may hold anything) so output is JSON. */
            size_t len = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC2 ? 2 : 0;
            bool ok = len > 0 && i + len <= n && c <= 0xF4;
            for (size_t k = 1; ok && k < len; k++)
                ok = ((unsigned char)s[i + k] & 0xC0) == 0x80;
            if (ok && len == 3) {
                unsigned cp = (c & 0x0Fu) << 12 | ((unsigned char)s[i + 1] & 0x3Fu) << 6;
                ok = cp >= 0x800 && (cp < 0xD800 || cp > 0xDFFF);
            } else if (ok && len == 4) {
                unsigned cp = (c & 0x07u) << 18 | ((unsigned char)s[i + 1] & 0x3Fu) << 12;
                ok = cp >= 0x10000 && cp <= 0x10FFFF;
            }
            if (ok)
                adv = len;
            else
                esc = "\\ufffd";
        }
        if (esc != NULL) {
            put(o, s + i - run, run);
            run = 0;
            puts_(o, esc);
            i += adv;
        } else {
            run += adv;
            i += adv;
        }
    }
    put(o, s + n - run, run);
    put(o, "\"", 1);
}

static void put_key(struct out *o, const char *name, bool *first)
{
    member_sep(o, first);
    if (o->flags & MP_PB_JSON_CAMEL_NAMES) {
        char b[256];
        mp_pb_json_name(name, b, sizeof(b));
        put_string(o, b, strlen(b));
    } else {
        put_string(o, name, strlen(name));
    }
    puts_(o, (o->flags & MP_PB_JSON_PRETTY) ? ": " : ":");
}

static void put_double(struct out *o, double d, bool is_float)
{
    if (isnan(d)) {
        puts_(o, "\"NaN\"");
        return;
    }
    if (isinf(d)) {
        puts_(o, d > 0 ? "\"Infinity\"" : "\"-Infinity\"");
        return;
    }
    /* Shortest precision that reads back to the same value. */
    char b[40];
    for (int p = is_float ? 6 : 15; p <= 17; p++) {
        snprintf(b, sizeof(b), "%.*g", p, d);
        if (is_float ? strtof(b, NULL) == (float)d : strtod(b, NULL) == d)
            break;
    }
    puts_(o, b);
}

static void print_message(struct out *o, const ProtobufCMessage *m);

static void print_value(struct out *o, const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32: putf(o, "%d", *(const int32_t *)slot); return;
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: putf(o, "%u", *(const uint32_t *)slot); return;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64: putf(o, "\"%lld\"", (long long)*(const int64_t *)slot); return;
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64:
        putf(o, "\"%llu\"", (unsigned long long)*(const uint64_t *)slot);
        return;
    case PROTOBUF_C_TYPE_FLOAT: put_double(o, *(const float *)slot, true); return;
    case PROTOBUF_C_TYPE_DOUBLE: put_double(o, *(const double *)slot, false); return;
    case PROTOBUF_C_TYPE_BOOL:
        puts_(o, *(const protobuf_c_boolean *)slot ? "true" : "false");
        return;
    case PROTOBUF_C_TYPE_ENUM: {
        int v = *(const int *)slot;
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(f->descriptor, v);
        if (ev != NULL)
            put_string(o, ev->name, strlen(ev->name));
        else
            putf(o, "%d", v);
        return;
    }
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        if (s == NULL)
            s = "";
        put_string(o, s, strlen(s));
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *bd = slot;
        size_t n = mp_base64_encoded_len(bd->len);
        char *b = malloc(n + 1);
        if (b == NULL) {
            o->rc = MP_ERR_NOMEM;
            return;
        }
        mp_base64_encode(bd->data, bd->len, b);
        put(o, "\"", 1);
        put(o, b, n);
        put(o, "\"", 1);
        free(b);
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *m = *(ProtobufCMessage *const *)slot;
        if (m == NULL) {
            /* A NULL element (only possible in hand-built messages) prints as
             * the message's default. */
            puts_(o, mp_pb_wkt_of(f->descriptor) == MP_PB_WKT_VALUE ? "null" : "{}");
            return;
        }
        print_message(o, m);
        return;
    }
    }
}

/* Is a singular field present (proto3: not at its default; oneof: chosen)? */
static bool present(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f)
{
    const char *slot = (const char *)m + f->offset;
    if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
        return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
    if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
        f->type != PROTOBUF_C_TYPE_STRING)
        return *(const protobuf_c_boolean *)((const char *)m + f->quantifier_offset);
    switch (f->type) {
    case PROTOBUF_C_TYPE_INT32:
    case PROTOBUF_C_TYPE_SINT32:
    case PROTOBUF_C_TYPE_SFIXED32:
    case PROTOBUF_C_TYPE_UINT32:
    case PROTOBUF_C_TYPE_FIXED32: return *(const uint32_t *)slot != 0;
    case PROTOBUF_C_TYPE_INT64:
    case PROTOBUF_C_TYPE_SINT64:
    case PROTOBUF_C_TYPE_SFIXED64:
    case PROTOBUF_C_TYPE_UINT64:
    case PROTOBUF_C_TYPE_FIXED64: return *(const uint64_t *)slot != 0;
    case PROTOBUF_C_TYPE_FLOAT: {
        /* -0.0 is packed by protobuf-c (bitwise non-zero), so print it. */
        uint32_t bits;
        memcpy(&bits, slot, 4);
        return bits != 0;
    }
    case PROTOBUF_C_TYPE_DOUBLE: {
        uint64_t bits;
        memcpy(&bits, slot, 8);
        return bits != 0;
    }
    case PROTOBUF_C_TYPE_BOOL: return *(const protobuf_c_boolean *)slot != 0;
    case PROTOBUF_C_TYPE_ENUM: return *(const int *)slot != 0;
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return s != NULL && s[0] != '\0';
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)slot)->len != 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)slot != NULL;
    }
    return false;
}

static void print_map(struct out *o, const ProtobufCFieldDescriptor *f, size_t n,
                      ProtobufCMessage *const *entries)
{
    const ProtobufCMessageDescriptor *ed = f->descriptor;
    const ProtobufCFieldDescriptor *kf = &ed->fields[0], *vf = &ed->fields[1];
    bool first = true;
    open_(o, '{');
    for (size_t i = 0; i < n && o->rc == 0; i++) {
        const char *e = (const char *)entries[i];
        if (e == NULL)
            continue;
        member_sep(o, &first);
        const void *kslot = e + kf->offset;
        if (kf->type == PROTOBUF_C_TYPE_STRING) {
            const char *k = *(char *const *)kslot;
            put_string(o, k ? k : "", k ? strlen(k) : 0);
        } else if (kf->type == PROTOBUF_C_TYPE_BOOL) {
            puts_(o, *(const protobuf_c_boolean *)kslot ? "\"true\"" : "\"false\"");
        } else {
            /* Integer keys: print the number, then make sure it is quoted. */
            size_t at = o->len;
            print_value(o, kf, kslot);
            if (o->rc == 0 && o->buf[at] != '"') {
                char num[32];
                snprintf(num, sizeof(num), "%s", o->buf + at);
                o->len = at;
                put(o, "\"", 1);
                puts_(o, num);
                put(o, "\"", 1);
            }
        }
        puts_(o, (o->flags & MP_PB_JSON_PRETTY) ? ": " : ":");
        print_value(o, vf, e + vf->offset);
    }
    close_(o, '}', first);
}

static void print_fields(struct out *o, const ProtobufCMessage *m, bool *first)
{
    const ProtobufCMessageDescriptor *d = m->descriptor;
    for (unsigned i = 0; i < d->n_fields && o->rc == 0; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        const char *slot = (const char *)m + f->offset;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
            if (n == 0)
                continue;
            const char *arr = *(char *const *)slot;
            put_key(o, f->name, first);
            if (mp_pb_field_is_map(d, f)) {
                print_map(o, f, n, (ProtobufCMessage *const *)arr);
                continue;
            }
            bool afirst = true;
            size_t esz = mp_pb_value_size(f->type);
            open_(o, '[');
            for (size_t k = 0; k < n && o->rc == 0; k++) {
                member_sep(o, &afirst);
                print_value(o, f, arr + k * esz);
            }
            close_(o, ']', afirst);
            continue;
        }
        if (!present(m, f))
            continue;
        put_key(o, f->name, first);
        print_value(o, f, slot);
    }
}

static void print_any(struct out *o, const Google__Protobuf__Any *any)
{
    const char *url = any->type_url != NULL ? any->type_url : "";
    if (url[0] == '\0' && any->value.len == 0) {
        puts_(o, "{}");
        return;
    }
    const ProtobufCMessageDescriptor *d = mp_type_registry_find(url);
    if (d == NULL && any->value.len == 0) {
        /* What parsing with MP_PB_JSON_IGNORE_UNKNOWN leaves: print it back
         * as it came, minus the fields nobody could read. */
        bool first = true;
        open_(o, '{');
        put_key(o, "@type", &first);
        put_string(o, url, strlen(url));
        close_(o, '}', false);
        return;
    }
    if (d == NULL) {
        fail(o, "cannot print Any: unknown type \"%s\"", url);
        return;
    }
    ProtobufCMessage *inner = protobuf_c_message_unpack(d, NULL, any->value.len, any->value.data);
    if (inner == NULL) {
        fail(o, "cannot print Any: value does not decode as %s", d->name);
        return;
    }
    bool first = true;
    open_(o, '{');
    put_key(o, "@type", &first);
    put_string(o, url, strlen(url));
    if (mp_pb_wkt_of(d) != MP_PB_WKT_NONE) {
        put_key(o, "value", &first);
        print_message(o, inner);
    } else {
        print_fields(o, inner, &first);
    }
    close_(o, '}', false);
    protobuf_c_message_free_unpacked(inner, NULL);
}

static void print_message(struct out *o, const ProtobufCMessage *m)
{
    char b[48];
    if (o->rc != 0)
        return;
    switch (mp_pb_wkt_of(m->descriptor)) {
    case MP_PB_WKT_ANY: print_any(o, (const Google__Protobuf__Any *)m); return;
    case MP_PB_WKT_DURATION: {
        const Google__Protobuf__Duration *d = (const Google__Protobuf__Duration *)m;
        if (mp_pb_duration_format(d->seconds, d->nanos, b, sizeof(b)) != 0)
            fail(o, "cannot print Duration: seconds=%lld nanos=%d out of range",
                 (long long)d->seconds, d->nanos);
        else
            put_string(o, b, strlen(b));
        return;
    }
    case MP_PB_WKT_TIMESTAMP: {
        const Google__Protobuf__Timestamp *t = (const Google__Protobuf__Timestamp *)m;
        if (mp_pb_timestamp_format(t->seconds, t->nanos, b, sizeof(b)) != 0)
            fail(o, "cannot print Timestamp: seconds=%lld nanos=%d out of range",
                 (long long)t->seconds, t->nanos);
        else
            put_string(o, b, strlen(b));
        return;
    }
    case MP_PB_WKT_STRUCT: {
        const Google__Protobuf__Struct *s = (const Google__Protobuf__Struct *)m;
        print_map(o, &m->descriptor->fields[0], s->n_fields, (ProtobufCMessage *const *)s->fields);
        return;
    }
    case MP_PB_WKT_VALUE: {
        const Google__Protobuf__Value *v = (const Google__Protobuf__Value *)m;
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field(m->descriptor, (unsigned)v->kind_case);
        if (f == NULL || v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE)
            puts_(o, "null");
        else
            print_value(o, f, (const char *)m + f->offset);
        return;
    }
    case MP_PB_WKT_LIST_VALUE: {
        const Google__Protobuf__ListValue *l = (const Google__Protobuf__ListValue *)m;
        bool first = true;
        open_(o, '[');
        for (size_t i = 0; i < l->n_values && o->rc == 0; i++) {
            member_sep(o, &first);
            print_value(o, &m->descriptor->fields[0], &l->values[i]);
        }
        close_(o, ']', first);
        return;
    }
    case MP_PB_WKT_WRAPPER: {
        const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
        print_value(o, f, (const char *)m + f->offset);
        return;
    }
    case MP_PB_WKT_FIELD_MASK:
    case MP_PB_WKT_NONE: break;
    }
    bool first = true;
    open_(o, '{');
    print_fields(o, m, &first);
    close_(o, '}', first);
}

int mp_pb_to_json(const ProtobufCMessage *msg, unsigned flags, char **out, size_t *out_len,
                  char **err)
{
    struct out o = {.flags = flags, .err = err};
    print_message(&o, msg);
    if (o.rc == 0 && (flags & MP_PB_JSON_PRETTY))
        put(&o, "\n", 1);
    if (o.rc != 0) {
        if (o.rc == MP_ERR_NOMEM)
            mp_set_err(err, "out of memory");
        free(o.buf);
        return o.rc;
    }
    *out = o.buf;
    if (out_len != NULL)
        *out_len = o.len;
    return 0;
}

char *mp_pb_json_name(const char *field_name, char *buf, size_t cap)
{
    size_t n = 0;
    bool upper = false;
    for (const char *s = field_name; *s != '\0' && n + 1 < cap; s++) {
        if (*s == '_') {
            upper = true;
            continue;
        }
        buf[n++] = upper && *s >= 'a' && *s <= 'z' ? (char)(*s - 'a' + 'A') : *s;
        upper = false;
    }
    if (cap > 0)
        buf[n] = '\0';
    return buf;
}

/* pb_merge.c: descriptor-driven MergeFrom and deep copy for protobuf-c. */
#include "pb_merge.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mp_common.h"
#include "pb_json_util.h"

ProtobufCMessage *mp_pb_copy(const ProtobufCMessage *msg)
{
    /* One message packs each field once, so pack + unpack is an exact copy
     * that never takes protobuf-c's merge path. */
    size_t n = protobuf_c_message_get_packed_size(msg);
    uint8_t *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL)
        return NULL;
    protobuf_c_message_pack(msg, buf);
    ProtobufCMessage *copy = protobuf_c_message_unpack(msg->descriptor, NULL, n, buf);
    free(buf);
    return copy;
}

/* Frees what one value slot of field f owns (not the slot itself). */
static void free_value(const ProtobufCFieldDescriptor *f, void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        char *s = *(char **)slot;
        if (s != NULL && s != (const char *)f->default_value && s != protobuf_c_empty_string)
            free(s);
        *(char **)slot = NULL;
        return;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        ProtobufCBinaryData *b = slot;
        const ProtobufCBinaryData *def = f->default_value;
        if (b->data != NULL && (def == NULL || b->data != def->data))
            free(b->data);
        b->data = NULL;
        b->len = 0;
        return;
    }
    case PROTOBUF_C_TYPE_MESSAGE:
        protobuf_c_message_free_unpacked(*(ProtobufCMessage **)slot, NULL);
        *(ProtobufCMessage **)slot = NULL;
        return;
    default: return;
    }
}

/* Copies one value from src slot into an empty dst slot. */
static int copy_value(const ProtobufCFieldDescriptor *f, void *dst, const void *src)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)src;
        char *d = strdup(s != NULL ? s : "");
        if (d == NULL)
            return MP_ERR_NOMEM;
        *(char **)dst = d;
        return 0;
    }
    case PROTOBUF_C_TYPE_BYTES: {
        const ProtobufCBinaryData *s = src;
        ProtobufCBinaryData *d = dst;
        d->len = 0;
        d->data = NULL;
        if (s->len > 0) {
            if ((d->data = malloc(s->len)) == NULL)
                return MP_ERR_NOMEM;
            memcpy(d->data, s->data, s->len);
            d->len = s->len;
        }
        return 0;
    }
    case PROTOBUF_C_TYPE_MESSAGE: {
        const ProtobufCMessage *s = *(ProtobufCMessage *const *)src;
        ProtobufCMessage *d = NULL;
        if (s != NULL && (d = mp_pb_copy(s)) == NULL)
            return MP_ERR_NOMEM;
        *(ProtobufCMessage **)dst = d;
        return 0;
    }
    default: memcpy(dst, src, mp_pb_value_size(f->type)); return 0;
    }
}

static bool is_default(const ProtobufCFieldDescriptor *f, const void *slot)
{
    switch (f->type) {
    case PROTOBUF_C_TYPE_STRING: {
        const char *s = *(char *const *)slot;
        return s == NULL || s[0] == '\0';
    }
    case PROTOBUF_C_TYPE_BYTES: return ((const ProtobufCBinaryData *)slot)->len == 0;
    case PROTOBUF_C_TYPE_MESSAGE: return *(ProtobufCMessage *const *)slot == NULL;
    default: {
        static const uint8_t zero[8];
        return memcmp(slot, zero, mp_pb_value_size(f->type)) == 0;
    }
    }
}

static bool keys_equal(const ProtobufCFieldDescriptor *kf, const void *a, const void *b)
{
    if (kf->type == PROTOBUF_C_TYPE_STRING) {
        const char *x = *(char *const *)a, *y = *(char *const *)b;
        return strcmp(x ? x : "", y ? y : "") == 0;
    }
    return memcmp(a, b, mp_pb_value_size(kf->type)) == 0;
}

static int merge_repeated(ProtobufCMessage *dst, const ProtobufCMessage *src,
                          const ProtobufCFieldDescriptor *f)
{
    size_t *dn = (size_t *)((char *)dst + f->quantifier_offset);
    size_t sn = *(const size_t *)((const char *)src + f->quantifier_offset);
    char **darr = (char **)((char *)dst + f->offset);
    const char *sarr = *(char *const *)((const char *)src + f->offset);
    if (sn == 0)
        return 0;
    size_t esz = mp_pb_value_size(f->type);
    bool map = mp_pb_field_is_map(dst->descriptor, f);
    char *grown = realloc(*darr, (*dn + sn) * esz);
    if (grown == NULL)
        return MP_ERR_NOMEM;
    *darr = grown;
    for (size_t i = 0; i < sn; i++) {
        const void *s = sarr + i * esz;
        if (map) {
            /* Same key: the later entry replaces the earlier one. */
            const ProtobufCMessageDescriptor *ed = f->descriptor;
            const ProtobufCMessage *se = *(ProtobufCMessage *const *)s;
            size_t k;
            for (k = 0; k < *dn; k++) {
                ProtobufCMessage *de = ((ProtobufCMessage **)*darr)[k];
                if (keys_equal(&ed->fields[0], (char *)de + ed->fields[0].offset,
                               (const char *)se + ed->fields[0].offset))
                    break;
            }
            if (k < *dn) {
                ProtobufCMessage *copy = mp_pb_copy(se);
                if (copy == NULL)
                    return MP_ERR_NOMEM;
                protobuf_c_message_free_unpacked(((ProtobufCMessage **)*darr)[k], NULL);
                ((ProtobufCMessage **)*darr)[k] = copy;
                continue;
            }
        }
        if (copy_value(f, *darr + *dn * esz, s) != 0)
            return MP_ERR_NOMEM;
        (*dn)++;
    }
    return 0;
}

int mp_pb_merge(ProtobufCMessage *dst, const ProtobufCMessage *src)
{
    const ProtobufCMessageDescriptor *d = dst->descriptor;
    if (src->descriptor != d)
        return MP_ERR_INVAL;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        void *dslot = (char *)dst + f->offset;
        const void *sslot = (const char *)src + f->offset;
        int rc = 0;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            rc = merge_repeated(dst, src, f);
        } else if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
            uint32_t scase = *(const uint32_t *)((const char *)src + f->quantifier_offset);
            uint32_t *dcase = (uint32_t *)((char *)dst + f->quantifier_offset);
            if (scase != f->id)
                continue;
            if (*dcase == f->id && f->type == PROTOBUF_C_TYPE_MESSAGE &&
                *(ProtobufCMessage **)dslot != NULL) {
                rc = mp_pb_merge(*(ProtobufCMessage **)dslot, *(ProtobufCMessage *const *)sslot);
            } else {
                if (*dcase != 0) {
                    const ProtobufCFieldDescriptor *old =
                        protobuf_c_message_descriptor_get_field(d, *dcase);
                    if (old != NULL)
                        free_value(old, (char *)dst + old->offset);
                }
                /* The case is set first so that a failed copy (slot NULL)
                 * still frees cleanly. */
                *dcase = f->id;
                memset(dslot, 0, mp_pb_value_size(f->type));
                rc = copy_value(f, dslot, sslot);
            }
        } else if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
            const ProtobufCMessage *s = *(ProtobufCMessage *const *)sslot;
            ProtobufCMessage **dm = dslot;
            if (s == NULL)
                continue;
            if (*dm != NULL)
                rc = mp_pb_merge(*dm, s);
            else
                rc = copy_value(f, dslot, sslot);
        } else {
            bool set;
            if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_STRING) {
                set = *(const protobuf_c_boolean *)((const char *)src + f->quantifier_offset);
                if (set)
                    *(protobuf_c_boolean *)((char *)dst + f->quantifier_offset) = 1;
            } else {
                set = f->label == PROTOBUF_C_LABEL_OPTIONAL ? *(char *const *)sslot != NULL
                                                            : !is_default(f, sslot);
            }
            if (!set)
                continue;
            free_value(f, dslot);
            rc = copy_value(f, dslot, sslot);
        }
        if (rc != 0)
            return rc;
    }
    return 0;
}

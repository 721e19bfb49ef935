/*
 * pb_json.h: protobuf-c messages <-> JSON, following the proto3 JSON mapping,
 * driven by protobuf-c descriptors (any message type, no generated code).
 *
 * Parsing goes JSON text or DOM (json.h; YAML builds the same DOM) ->
 * ProtobufCMessage. Messages are allocated exactly as protobuf_c_message_unpack
 * allocates them (system allocator), so the result is freed with
 * protobuf_c_message_free_unpacked(msg, NULL).
 *
 * Errors name the full path of the offending field:
 *   static_resources.clusters[2].connect_timeout: invalid duration "abc" (line 14)
 */
#ifndef MP_PB_JSON_H
#define MP_PB_JSON_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "json.h"

/* Flags for parsing. */
enum {
    /* Skip fields the message type does not know instead of failing
     * (Envoy's --allow-unknown-static-fields). Unknown enum names leave the
     * field unset; an Any whose type is not compiled in keeps its type URL
     * with an empty value (and prints back as {"@type": url}). */
    MP_PB_JSON_IGNORE_UNKNOWN = 1u << 0,
};

/* Flags for printing. */
enum {
    MP_PB_JSON_PRETTY = 1u << 0, /* newlines and 2-space indent */
    MP_PB_JSON_CAMEL_NAMES =
        1u << 1, /* lowerCamelCase keys (default: proto names, as Envoy prints) */
};

/**
 * Converts a DOM node into a new message of type desc. flags: MP_PB_JSON_*
 * parse flags. On success stores the message in *out (caller frees with
 * protobuf_c_message_free_unpacked(*out, NULL)) and returns 0. On failure
 * returns MP_ERR_INVAL (bad value, unknown field, oneof conflict, unknown
 * Any type) or MP_ERR_NOMEM, leaves *out untouched, and stores a malloc'd
 * message naming the field path in *err (when err is not NULL).
 */
int mp_pb_from_json_node(const struct mp_json *node, const ProtobufCMessageDescriptor *desc,
                         unsigned flags, ProtobufCMessage **out, char **err);

/**
 * Parses JSON text and converts it, as mp_pb_from_json_node. JSON syntax
 * errors return MP_ERR_PARSE with "line L column C: ..." in *err.
 */
int mp_pb_from_json(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                    unsigned flags, ProtobufCMessage **out, char **err);

/**
 * Prints msg as JSON. flags: MP_PB_JSON_PRETTY, MP_PB_JSON_CAMEL_NAMES.
 * Fields at their default value are omitted (proto3 rule); int64 kinds are
 * quoted; bytes are base64; Any is expanded through the type registry.
 * On success stores a malloc'd NUL-terminated string in *out (its length in
 * *out_len when out_len is not NULL) and returns 0. Returns MP_ERR_INVAL
 * (with *err) for an Any whose type is unknown or whose value does not
 * decode, an out-of-range Duration/Timestamp; MP_ERR_NOMEM on OOM.
 */
int mp_pb_to_json(const ProtobufCMessage *msg, unsigned flags, char **out, size_t *out_len,
                  char **err);

/**
 * Converts a proto field name to its lowerCamelCase JSON name
 * ("connect_timeout" -> "connectTimeout") into buf (size cap, always
 * NUL-terminated). Returns buf.
 */
char *mp_pb_json_name(const char *field_name, char *buf, size_t cap);

#endif

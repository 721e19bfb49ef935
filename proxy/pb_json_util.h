/*
 * pb_json_util.h: pieces of the proto3 JSON mapping shared by the parser
 * (pb_json.c) and the printer (pb_json_print.c): well-known type detection,
 * field lookup by JSON name, map detection, Duration/Timestamp text, base64.
 */
#ifndef MP_PB_JSON_UTIL_H
#define MP_PB_JSON_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

/* Well-known types whose JSON form is not a plain object of their fields. */
enum mp_pb_wkt {
    MP_PB_WKT_NONE,
    MP_PB_WKT_ANY,
    MP_PB_WKT_DURATION,
    MP_PB_WKT_TIMESTAMP,
    MP_PB_WKT_STRUCT,
    MP_PB_WKT_VALUE,
    MP_PB_WKT_LIST_VALUE,
    MP_PB_WKT_WRAPPER, /* DoubleValue ... BytesValue: the bare `value` field */
    MP_PB_WKT_FIELD_MASK,
};

/** Which well-known type desc is (MP_PB_WKT_NONE for ordinary messages). */
enum mp_pb_wkt mp_pb_wkt_of(const ProtobufCMessageDescriptor *desc);

/**
 * Finds a field of desc by its proto name or its lowerCamelCase JSON name.
 * Returns NULL when there is none.
 */
const ProtobufCFieldDescriptor *mp_pb_field_find(const ProtobufCMessageDescriptor *desc,
                                                 const char *key);

/**
 * True when field f of message parent is a proto map (a repeated
 * `<Field>Entry` message nested in parent with key=1 and value=2 fields).
 */
bool mp_pb_field_is_map(const ProtobufCMessageDescriptor *parent,
                        const ProtobufCFieldDescriptor *f);

/** The size of one value of type t in a message struct (a repeated field's element). */
size_t mp_pb_value_size(ProtobufCType t);

/**
 * Parses a Duration in JSON form ("1.5s", "-0.000001s", "300s").
 * Returns 0, or MP_ERR_INVAL when malformed or beyond +-315576000000 s.
 */
int mp_pb_duration_parse(const char *s, int64_t *seconds, int32_t *nanos);

/**
 * Formats a Duration as "<sec>[.fff|.ffffff|.fffffffff]s" into buf (cap >= 32).
 * Returns 0, or MP_ERR_INVAL when out of range or the signs disagree.
 */
int mp_pb_duration_format(int64_t seconds, int32_t nanos, char *buf, size_t cap);

/**
 * Parses an RFC 3339 timestamp ("2024-01-02T03:04:05.5Z", "...+01:00")
 * between 0001-01-01 and 9999-12-31. Returns 0 or MP_ERR_INVAL.
 */
int mp_pb_timestamp_parse(const char *s, int64_t *seconds, int32_t *nanos);

/**
 * Formats a Timestamp in UTC ("1972-01-01T10:00:20.021Z") into buf
 * (cap >= 40). Returns 0 or MP_ERR_INVAL when out of range.
 */
int mp_pb_timestamp_format(int64_t seconds, int32_t nanos, char *buf, size_t cap);

/**
 * Decodes base64 (standard or URL-safe alphabet, padding optional) into a
 * malloc'd buffer (*out, *out_len; *out is NULL for empty input).
 * Returns 0, MP_ERR_INVAL for bad input, or MP_ERR_NOMEM.
 */
int mp_base64_decode(const char *s, size_t len, uint8_t **out, size_t *out_len);

/** Length of the standard, padded base64 encoding of n bytes (without NUL). */
size_t mp_base64_encoded_len(size_t n);

/** Encodes n bytes into out (mp_base64_encoded_len(n) + 1 bytes; NUL-terminated). */
void mp_base64_encode(const uint8_t *in, size_t n, char *out);

#endif

/*
 * pb_yaml.h: YAML (libyaml) -> the JSON DOM (json.h) -> protobuf-c message.
 *
 * YAML and JSON share one conversion path (pb_json.h). Plain scalars stay
 * untyped (MP_JSON_PLAIN) until the target field decides, per the YAML 1.2
 * core schema; quoted scalars are strings. Anchors, aliases and merge keys
 * (`<<`) are supported. Nodes carry line numbers, which end up in errors.
 */
#ifndef MP_PB_YAML_H
#define MP_PB_YAML_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

#include "json.h"

/**
 * Parses one YAML document into a DOM. An empty stream gives a NULL root node
 * (type MP_JSON_NULL). More than one document is an error. lim may be NULL.
 * On success stores the document in *out (free with mp_json_doc_free) and
 * returns 0; on failure returns MP_ERR_PARSE / MP_ERR_LIMIT / MP_ERR_NOMEM and
 * stores a malloc'd "line L column C: ..." message in *err.
 */
int mp_yaml_parse(const char *text, size_t len, const struct mp_json_limits *lim,
                  struct mp_json_doc **out, char **err);

/**
 * Parses YAML text and converts it into a new message of type desc; flags
 * are pb_json.h parse flags (MP_PB_JSON_IGNORE_UNKNOWN). On success the
 * caller frees *out with protobuf_c_message_free_unpacked(*out, NULL).
 * Failure returns as mp_yaml_parse / mp_pb_from_json_node.
 */
int mp_pb_from_yaml(const char *text, size_t len, const ProtobufCMessageDescriptor *desc,
                    unsigned flags, ProtobufCMessage **out, char **err);

#endif

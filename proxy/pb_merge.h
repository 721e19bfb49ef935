/*
 * pb_merge.h: protobuf MergeFrom for protobuf-c messages, driven by
 * descriptors.
 *
 * protobuf-c 1.4.1 cannot be trusted to merge by parsing two encodings back
 * to back: its merge of a repeated sub-message fails when that message has a
 * oneof set in neither copy (envoy.config.core.v3.Node does), so this walks
 * the fields instead.
 */
#ifndef MP_PB_MERGE_H
#define MP_PB_MERGE_H

#include <protobuf-c/protobuf-c.h>

/**
 * Merges src into dst (same type), as protobuf's MergeFrom: singular scalars
 * and strings that src sets (non-default, or present for oneof members and
 * proto2 optionals) replace dst's; singular messages merge recursively;
 * repeated fields append copies; map entries replace dst's entry with the
 * same key or append; setting a different oneof member frees the old one.
 * dst must have been allocated like protobuf_c_message_unpack does (it is
 * freed with protobuf_c_message_free_unpacked). Returns 0, MP_ERR_INVAL when
 * the types differ, or MP_ERR_NOMEM (dst stays valid and freeable, possibly
 * partly merged).
 */
int mp_pb_merge(ProtobufCMessage *dst, const ProtobufCMessage *src);

/**
 * Deep copy of msg, allocated as protobuf_c_message_unpack allocates.
 * Returns NULL when out of memory.
 */
ProtobufCMessage *mp_pb_copy(const ProtobufCMessage *msg);

#endif

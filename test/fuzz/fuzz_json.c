/*
 * fuzz_json.c: JSON text -> DOM -> Bootstrap -> JSON -> Bootstrap. Checks that
 * nothing crashes or leaks, and that whatever parses prints to JSON that
 * parses back to the same bytes.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "envoy/config/bootstrap/v3/bootstrap.pb-c.h"
#include "proxy/json.h"
#include "proxy/pb_json.h"

#define DESC (&envoy__config__bootstrap__v3__bootstrap__descriptor)

static int same_bytes(const ProtobufCMessage *a, const ProtobufCMessage *b)
{
    size_t la = protobuf_c_message_get_packed_size(a), lb = protobuf_c_message_get_packed_size(b);
    if (la != lb)
        return 0;
    uint8_t *pa = malloc(la + 1), *pb = malloc(lb + 1);
    protobuf_c_message_pack(a, pa);
    protobuf_c_message_pack(b, pb);
    int same = memcmp(pa, pb, la) == 0;
    free(pa);
    free(pb);
    return same;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mp_json_limits lim = {.max_bytes = 1 << 20, .max_depth = 64, .max_nodes = 100000};
    struct mp_json_doc *doc = NULL;
    if (mp_json_parse((const char *)data, size, &lim, &doc, NULL) != 0)
        return 0;
    ProtobufCMessage *m = NULL;
    if (mp_pb_from_json_node(mp_json_doc_root(doc), DESC, 0, &m, NULL) == 0) {
        char *js = NULL;
        if (mp_pb_to_json(m, 0, &js, NULL, NULL) == 0) {
            ProtobufCMessage *back = NULL;
            if (mp_pb_from_json(js, strlen(js), DESC, 0, &back, NULL) != 0 || !same_bytes(m, back))
                abort(); /* printed JSON must read back to the same message */
            protobuf_c_message_free_unpacked(back, NULL);
            free(js);
        }
        protobuf_c_message_free_unpacked(m, NULL);
    }
    mp_json_doc_free(doc);
    return 0;
}

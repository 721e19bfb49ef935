/*
 * fuzz_yaml.c: YAML text -> Bootstrap (anchors, merge keys, plain scalars,
 * limits), then the cheap semantic checks. Nothing may crash or leak.
 */
#include <stdint.h>
#include <stdlib.h>

#include "proxy/bootstrap.h"
#include "proxy/json.h"
#include "proxy/pb_yaml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct mp_json_limits lim = {.max_bytes = 1 << 20, .max_depth = 64, .max_nodes = 100000};
    struct mp_json_doc *doc = NULL;
    char *err = NULL;
    if (mp_yaml_parse((const char *)data, size, &lim, &doc, &err) == 0) {
        mp_json_doc_free(doc);
        Envoy__Config__Bootstrap__V3__Bootstrap *b = NULL;
        if (mp_bootstrap_load_yaml((const char *)data, size, 0, &b, &err) == 0) {
            mp_bootstrap_validate(b, &err);
            mp_bootstrap_free(b);
        }
    }
    free(err);
    return 0;
}

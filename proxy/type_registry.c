/* type_registry.c: binary search over the generated, sorted descriptor table. */
#include "type_registry.h"

#include <string.h>

extern const ProtobufCMessageDescriptor *const mp_type_registry_table[];
extern const size_t mp_type_registry_count;

const ProtobufCMessageDescriptor *mp_type_registry_find(const char *type_url)
{
    if (type_url == NULL)
        return NULL;
    const char *slash = strrchr(type_url, '/');
    const char *name = slash != NULL ? slash + 1 : type_url;
    size_t lo = 0, hi = mp_type_registry_count;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, mp_type_registry_table[mid]->name);
        if (c == 0)
            return mp_type_registry_table[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

size_t mp_type_registry_size(void)
{
    return mp_type_registry_count;
}

/* filter_lookup.c: the registries' shared lookup rule (see filter_lookup.h). */
#include "filter_lookup.h"

#include <string.h>

static const char *member(const void *entry, size_t off)
{
    const char *s;
    memcpy(&s, (const char *)entry + off, sizeof(s));
    return s;
}

ptrdiff_t mp_filter_lookup(const void *const *entries, size_t n, size_t name_off, size_t type_off,
                           const char *name, const char *type_url)
{
    /* the typed_config type decides, as in Envoy; the name is a fallback */
    if (type_url && *type_url) {
        const char *slash = strrchr(type_url, '/');
        const char *type = slash ? slash + 1 : type_url;
        for (size_t i = 0; i < n; i++) {
            const char *t = member(entries[i], type_off);
            if (t && strcmp(t, type) == 0)
                return (ptrdiff_t)i;
        }
    }
    if (name) {
        for (size_t i = 0; i < n; i++)
            if (strcmp(member(entries[i], name_off), name) == 0)
                return (ptrdiff_t)i;
    }
    return -1;
}

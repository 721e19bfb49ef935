/*
 * filter_lookup.h: the lookup rule the HTTP and network filter registries
 * share: a filter is found by its typed_config type, as in Envoy, and by its
 * name only when the type names no filter.
 */
#ifndef MP_FILTER_LOOKUP_H
#define MP_FILTER_LOOKUP_H

#include <stddef.h>

/**
 * Finds the entry of entries[0..n) for a listener's filter: the first whose
 * config_type equals type_url's message name (the part after its last '/';
 * an empty or NULL type_url names none), else the first whose name equals
 * name (NULL: none). Each entry is an ops struct holding `const char *` name
 * and config_type members at name_off and type_off (offsetof); config_type
 * may be NULL, name may not. Returns the entry's index, or -1 when none fits.
 */
ptrdiff_t mp_filter_lookup(const void *const *entries, size_t n, size_t name_off, size_t type_off,
                           const char *name, const char *type_url);

#endif

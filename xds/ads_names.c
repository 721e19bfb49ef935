/*
 * ads_names.c: sorted unique string set. Subscriptions are compared and
 * diffed often (every request in delta), so keeping them sorted makes each
 * of those a linear merge.
 */
#include "ads_names.h"

#include <stdlib.h>
#include <string.h>

#include "mp_common.h"

void mp_ads_names_clear(struct mp_ads_names *s)
{
    for (size_t i = 0; i < s->n; i++)
        free(s->v[i]);
    free(s->v);
    s->v = NULL;
    s->n = s->cap = 0;
}

size_t mp_ads_names_search(const void *base, size_t n, size_t stride, size_t name_off,
                           const char *name, bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *m = *(char *const *)((const char *)base + mid * stride + name_off);
        int c = strcmp(m, name);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

/* Index of name, or of where it would go; *found says which. */
static size_t find(const struct mp_ads_names *s, const char *name, bool *found)
{
    return mp_ads_names_search(s->v, s->n, sizeof(*s->v), 0, name, found);
}

bool mp_ads_names_has(const struct mp_ads_names *s, const char *name)
{
    bool found;
    find(s, name, &found);
    return found;
}

int mp_ads_names_add(struct mp_ads_names *s, const char *name)
{
    bool found;
    size_t at = find(s, name, &found);
    if (found)
        return 0;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 8;
        char **v = realloc(s->v, cap * sizeof(*v));
        if (!v)
            return MP_ERR_NOMEM;
        s->v = v;
        s->cap = cap;
    }
    char *copy = strdup(name);
    if (!copy)
        return MP_ERR_NOMEM;
    memmove(s->v + at + 1, s->v + at, (s->n - at) * sizeof(*s->v));
    s->v[at] = copy;
    s->n++;
    return 0;
}

bool mp_ads_names_remove(struct mp_ads_names *s, const char *name)
{
    bool found;
    size_t at = find(s, name, &found);
    if (!found)
        return false;
    free(s->v[at]);
    memmove(s->v + at, s->v + at + 1, (s->n - at - 1) * sizeof(*s->v));
    s->n--;
    return true;
}

bool mp_ads_names_equal(const struct mp_ads_names *a, const struct mp_ads_names *b)
{
    if (a->n != b->n)
        return false;
    for (size_t i = 0; i < a->n; i++)
        if (strcmp(a->v[i], b->v[i]) != 0)
            return false;
    return true;
}

int mp_ads_names_copy(struct mp_ads_names *dst, const struct mp_ads_names *src)
{
    struct mp_ads_names tmp = MP_ADS_NAMES_INIT;
    if (src->n) {
        tmp.v = malloc(src->n * sizeof(*tmp.v));
        if (!tmp.v)
            return MP_ERR_NOMEM;
        tmp.cap = src->n;
        for (; tmp.n < src->n; tmp.n++) {
            tmp.v[tmp.n] = strdup(src->v[tmp.n]);
            if (!tmp.v[tmp.n]) {
                mp_ads_names_clear(&tmp);
                return MP_ERR_NOMEM;
            }
        }
    }
    mp_ads_names_clear(dst);
    *dst = tmp;
    return 0;
}

int mp_ads_names_union(struct mp_ads_names *dst, const struct mp_ads_names *src)
{
    for (size_t i = 0; i < src->n; i++) {
        int rc = mp_ads_names_add(dst, src->v[i]);
        if (rc)
            return rc;
    }
    return 0;
}

int mp_ads_names_minus(struct mp_ads_names *out, const struct mp_ads_names *a,
                       const struct mp_ads_names *b)
{
    mp_ads_names_clear(out);
    for (size_t i = 0; i < a->n; i++) {
        if (mp_ads_names_has(b, a->v[i]))
            continue;
        /* a is sorted, so appending keeps out sorted: add() finds the end. */
        if (mp_ads_names_add(out, a->v[i])) {
            mp_ads_names_clear(out);
            return MP_ERR_NOMEM;
        }
    }
    return 0;
}

const char *mp_ads_message_name(const ProtobufCMessage *msg)
{
    static const char *const fields[] = {"name", "cluster_name"};
    for (size_t i = 0; i < MP_ARRAY_LEN(fields); i++) {
        const ProtobufCFieldDescriptor *f =
            protobuf_c_message_descriptor_get_field_by_name(msg->descriptor, fields[i]);
        if (f && f->type == PROTOBUF_C_TYPE_STRING && f->label != PROTOBUF_C_LABEL_REPEATED)
            return *(char *const *)((const char *)msg + f->offset);
    }
    return NULL;
}

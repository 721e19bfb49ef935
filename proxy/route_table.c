/*
 * route_table.c: lifetime of a route config. All of a config's memory comes
 * from one arena, so translation error paths need no per-field cleanup and
 * freeing a config is a walk over a few large chunks (plus its regexes,
 * which pcre2 allocated).
 */
#include "proxy/route_table.h"

#include <stdalign.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/route_regex.h"

#define ARENA_CHUNK (16 * 1024)

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    alignas(max_align_t) unsigned char data[];
};

struct mp_route_arena {
    struct arena_chunk *head;
};

struct mp_route_config *mp_route_config_new(void)
{
    struct mp_route_arena *arena = calloc(1, sizeof(*arena));
    if (arena == NULL)
        return NULL;
    struct mp_route_config tmp = {.arena = arena};
    struct mp_route_config *cfg = mp_route_arena_alloc(&tmp, sizeof(*cfg));
    if (cfg == NULL) {
        free(arena);
        return NULL;
    }
    cfg->arena = arena;
    cfg->name = "";
    atomic_init(&cfg->refs, 1);
    return cfg;
}

void *mp_route_arena_alloc(struct mp_route_config *cfg, size_t n)
{
    struct mp_route_arena *a = cfg->arena;
    size_t align = alignof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    if (n == 0)
        n = align;
    struct arena_chunk *c = a->head;
    if (c == NULL || c->cap - c->used < n) {
        /* Big requests get a chunk of their own, put behind the current one
         * so the current chunk's free space is not wasted. */
        size_t cap = n > ARENA_CHUNK / 4 ? n : ARENA_CHUNK;
        struct arena_chunk *nc = malloc(sizeof(*nc) + cap);
        if (nc == NULL)
            return NULL;
        nc->used = 0;
        nc->cap = cap;
        if (c != NULL && cap != ARENA_CHUNK) {
            nc->next = c->next;
            c->next = nc;
        } else {
            nc->next = c;
            a->head = nc;
        }
        c = nc;
    }
    void *p = c->data + c->used;
    c->used += n;
    memset(p, 0, n);
    return p;
}

char *mp_route_arena_strndup(struct mp_route_config *cfg, const char *s, size_t len, bool lower)
{
    char *d = mp_route_arena_alloc(cfg, len + 1);
    if (d == NULL)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        char ch = s[i];
        d[i] = (lower && ch >= 'A' && ch <= 'Z') ? (char)(ch - 'A' + 'a') : ch;
    }
    d[len] = '\0';
    return d;
}

struct mp_route_config *mp_route_config_ref(struct mp_route_config *cfg)
{
    atomic_fetch_add_explicit(&cfg->refs, 1, memory_order_relaxed);
    return cfg;
}

void mp_route_config_free(struct mp_route_config *cfg)
{
    mp_route_config_unref(cfg);
}

void mp_route_config_unref(struct mp_route_config *cfg)
{
    if (cfg == NULL)
        return;
    /* acq_rel: the freeing thread must see every other holder's last reads. */
    if (atomic_fetch_sub_explicit(&cfg->refs, 1, memory_order_acq_rel) != 1)
        return;
    mp_regex_free_list(cfg->regexes);
    /* cfg itself lives in its arena: take the arena pointer first. */
    struct mp_route_arena *a = cfg->arena;
    struct arena_chunk *c = a->head;
    while (c != NULL) {
        struct arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    free(a);
}

/* lb_edf.c: binary min-heap on (deadline, insertion order). */
#include "lb_edf.h"

#include <stdbool.h>
#include <stdlib.h>

#include "mp_common.h"

int mp_lb_edf_init(struct mp_lb_edf *e, size_t cap)
{
    e->heap = calloc(cap ? cap : 1, sizeof(*e->heap));
    e->n = 0;
    e->cap = cap;
    e->now = 0;
    e->seq = 0;
    return e->heap == NULL ? MP_ERR_NOMEM : 0;
}

void mp_lb_edf_clear(struct mp_lb_edf *e)
{
    free(e->heap);
    e->heap = NULL;
    e->n = e->cap = 0;
}

static bool before(const struct mp_lb_edf_entry *a, const struct mp_lb_edf_entry *b)
{
    if (a->deadline != b->deadline)
        return a->deadline < b->deadline;
    return a->seq < b->seq;
}

void mp_lb_edf_add(struct mp_lb_edf *e, uint32_t slot, double weight)
{
    if (e->n >= e->cap)
        return;
    struct mp_lb_edf_entry ent = {e->now + 1.0 / weight, e->seq++, slot};
    size_t i = e->n++;
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!before(&ent, &e->heap[parent]))
            break;
        e->heap[i] = e->heap[parent];
        i = parent;
    }
    e->heap[i] = ent;
}

uint32_t mp_lb_edf_pop(struct mp_lb_edf *e)
{
    struct mp_lb_edf_entry top = e->heap[0];
    struct mp_lb_edf_entry last = e->heap[--e->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= e->n)
            break;
        if (c + 1 < e->n && before(&e->heap[c + 1], &e->heap[c]))
            c++;
        if (!before(&e->heap[c], &last))
            break;
        e->heap[i] = e->heap[c];
        i = c;
    }
    if (e->n > 0)
        e->heap[i] = last;
    e->now = top.deadline;
    return top.slot;
}

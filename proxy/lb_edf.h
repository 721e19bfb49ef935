/*
 * lb_edf.h: earliest-deadline-first scheduler for weighted picks, as in
 * Envoy's EdfScheduler: each entry's next deadline is now + 1/weight, the
 * smallest deadline goes next, ties go to the entry added first. Picks are
 * O(log n). One scheduler belongs to one worker.
 */
#ifndef MP_LB_EDF_H
#define MP_LB_EDF_H

#include <stddef.h>
#include <stdint.h>

struct mp_lb_edf_entry {
    double deadline;
    uint64_t seq;  /* insertion order: tie-break */
    uint32_t slot; /* caller's index (position in its host list) */
};

struct mp_lb_edf {
    struct mp_lb_edf_entry *heap;
    size_t n;
    size_t cap;
    double now;
    uint64_t seq;
};

/** Allocates room for cap entries. Returns 0 or MP_ERR_NOMEM. */
int mp_lb_edf_init(struct mp_lb_edf *e, size_t cap);

/** Frees the heap. */
void mp_lb_edf_clear(struct mp_lb_edf *e);

/** Adds slot with the given weight (> 0); capacity must not be exceeded. */
void mp_lb_edf_add(struct mp_lb_edf *e, uint32_t slot, double weight);

/** Removes and returns the slot with the earliest deadline (e must be non-empty). */
uint32_t mp_lb_edf_pop(struct mp_lb_edf *e);

#endif

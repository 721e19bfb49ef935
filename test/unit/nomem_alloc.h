/*
 * nomem_alloc.h: the failing allocator shared by the *_nomem unit tests.
 *
 * nomem_alloc.c replaces malloc/calloc/realloc/aligned_alloc/free for the
 * whole test process (glibc, libpcre2 and BoringSSL call them too), so it is
 * compiled into each such test executable (not a static library, whose object
 * the linker could leave out). Sanitizers bring their own allocator, which
 * cannot be replaced: under them NOMEM_SANITIZED is 1, nothing is replaced and
 * nomem_check_every_failure() does nothing (the caller's own run of the
 * scenario is checked by LeakSanitizer).
 */
#ifndef MP_NOMEM_ALLOC_H
#define MP_NOMEM_ALLOC_H

#include <stdbool.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define NOMEM_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) ||                         \
    __has_feature(memory_sanitizer)
#define NOMEM_SANITIZED 1
#endif
#endif
#ifndef NOMEM_SANITIZED
#define NOMEM_SANITIZED 0
#endif

/**
 * Runs scenario() with its k-th allocation failing, for k = 0, 1, ... up to
 * max_runs, until a run reaches no failing allocation. Once the k-th has
 * failed, every later allocation of that run fails too. Each run must leave
 * no allocation behind (counted from the start of scenario() to the end of
 * settle(), which may be NULL and runs with failures off, to drop caches the
 * scenario filled); the run that reaches no failure must return true, and
 * more than min_failures runs must have failed. Any of these not holding
 * fails the calling cmocka test. Prints how many failures were handled.
 * Returns that number (0 under sanitizers, where it runs nothing).
 */
int nomem_check_every_failure(bool (*scenario)(void), void (*settle)(void), int max_runs,
                              int min_failures);

/*
 * The pieces nomem_check_every_failure() is made of, for tests that drive
 * their own loop. All do nothing (and return 0) under sanitizers.
 */

/**
 * Arms the allocator: counting from this call, allocation number k (0 is the
 * next) fails, and when sticky every one after it too; k < 0 disarms.
 */
void nomem_arm(long k, bool sticky);

/** How many allocations were made (or failed) since the last nomem_arm(). */
long nomem_seen(void);

/** How many blocks are allocated and not yet freed (compare two readings). */
long nomem_live(void);

#endif

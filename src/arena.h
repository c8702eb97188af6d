/**
 * @file arena.h
 * @brief A per-lane bump allocator for the jansson values of one message: while a lane has its
 *        arena open (ks_arena_begin .. ks_arena_end), jansson allocations made on that thread
 *        come from the arena and frees of them do nothing; ks_arena_end takes everything back at
 *        once. Everywhere else (other threads, or this thread outside the window) jansson gets
 *        malloc and free, so long-lived values (cached schemas, configuration) never live in an
 *        arena. Nothing allocated in the window may outlive it.
 */
#ifndef KS_ARENA_H
#define KS_ARENA_H

#include <stddef.h>

typedef struct ks_arena ks_arena_t;

/**
 * @brief Route jansson's allocations through the arenas (json_set_alloc_funcs, process-wide,
 *        once). Outside an open arena its allocations are plain malloc and free, so installing
 *        it while other values exist is safe. @locality any thread; call before the lanes start
 */
void ks_arena_install(void);

/**
 * @brief A new arena that keeps up to @p keep bytes of chunks between messages (what a larger
 *        message needed beyond that is given back at ks_arena_end).
 * @returns the arena (caller destroys) or NULL when out of memory.
 */
ks_arena_t *ks_arena_new(size_t keep);

/** @brief Free; NULL is fine. It must not be open. */
void ks_arena_destroy(ks_arena_t *a);

/** @brief Open @p a on the calling thread: jansson allocations here come from it. NULL: none. */
void ks_arena_begin(ks_arena_t *a);

/** @brief Close the arena open on the calling thread and take back all it gave. */
void ks_arena_end(void);

/**
 * @brief Close the calling thread's arena for a while (values made now outlive the message,
 *        e.g. a cache entry) without taking anything back.
 * @returns what to hand to ks_arena_resume.
 */
ks_arena_t *ks_arena_suspend(void);

/** @brief Reopen an arena closed by ks_arena_suspend. */
void ks_arena_resume(ks_arena_t *a);

/** @brief 1 when @p p was given by the arena open on the calling thread. */
int ks_arena_owns(const void *p);

/** @brief Bytes the arena handed out in its current window (tests and the bench). */
size_t ks_arena_used(const ks_arena_t *a);

#endif

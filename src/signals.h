/**
 * @file signals.h
 * @brief SIGTERM and SIGINT, taken on one thread of their own. A process-directed signal runs
 *        its handler on any thread that does not block it (librdkafka's, libcurl's,
 *        libmicrohttpd's, the decode lanes'), so no thread runs a handler: the signals are
 *        blocked before any thread starts (every thread inherits the mask) and read from a
 *        signalfd by one thread, which sets the stop request the loops read.
 */
#ifndef KS_SIGNALS_H
#define KS_SIGNALS_H

#include <spawn.h>
#include <stdint.h>

#include "common.h"

/**
 * A request to stop, set once by the signal thread and read by the loops (ks_stop_requested);
 * and the other way, the bound the worker asks for on its own shutdown (ks_stop_bound).
 */
typedef struct ks_stop {
	int requested;
	int64_t bound_at;  /* 0, or the ks_now_ms() past which the signal thread ends the process */
	int wake;          /* the signal thread's wake-up pipe (-1: no signal thread) */
} ks_stop;

/** @brief A ks_stop with nothing requested and no signal thread. */
#define KS_STOP_INIT { 0, 0, -1 }

/** @brief Whether a stop was requested (@p s may be NULL: never). @locality any thread */
static inline int ks_stop_requested(const ks_stop *s)
{
	return s && __atomic_load_n(&s->requested, __ATOMIC_ACQUIRE);
}

/**
 * @brief The process must end within @p ms from now (a shutdown that began by itself:
 *        --exit-at-eof, a fatal error): past that, the signal thread ends it (status 1). Only
 *        ever brings an earlier bound; without a signal thread (@p s NULL or never started),
 *        nothing. @locality any thread
 */
void ks_stop_bound(ks_stop *s, int64_t ms);

typedef struct ks_signals ks_signals_t;

/**
 * @brief Block SIGTERM and SIGINT in the calling thread (and so in every thread started after
 *        it), ignore SIGPIPE, and start the thread that takes them. The first sets @p stop and,
 *        unless the process ended by itself within @p bound_ms, ends it then (status 1); a second
 *        ends it at once (status 1). Either way nothing more is committed: what was not is read
 *        again by the partitions' next owner. @p bound_ms 0: no bound after the first.
 * @returns the handle (ks_signals_destroy) or NULL with @p err set.
 * @locality main thread, before any other thread starts
 */
ks_signals_t *ks_signals_start(ks_stop *stop, int64_t bound_ms, ks_errbuf *err);

/**
 * @brief Hold SIGTERM and SIGINT back (@p hold 1) from the first instruction of main, so that one
 *        sent while the configuration loads is taken by ks_signals_start's thread once it runs;
 *        or let them act again (0) for a command that starts no signal thread (--check), one
 *        held meanwhile acting now. @locality main thread, before any other thread starts
 */
void ks_signals_hold(int hold);

/**
 * @brief Stop the signal thread. The signals stay blocked: one arriving as the process ends
 *        is not taken (the process does not die of it instead of exiting). NULL is fine.
 * @locality the thread that started it, after every other thread ended
 */
void ks_signals_destroy(ks_signals_t *s);

/**
 * @brief The signal mask a spawned program must start with: nothing blocked. For posix_spawn
 *        (POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF, with SIGPIPE back to its default).
 * @returns 0, or an errno value from posix_spawnattr_*.
 * @locality any thread
 */
int ks_signals_child_attr(posix_spawnattr_t *attr);

#endif

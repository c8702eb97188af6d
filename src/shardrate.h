/**
 * @file shardrate.h
 * @brief One shard's write rate as the service's answers set it (AIMD, as TCP's congestion
 *        window): an entry the shard throttled cuts the rate multiplicatively, accepted entries
 *        raise it additively back toward its ceiling (the service's limit times
 *        rate.limit.percent): quickly up to just below the rate the last cut started from (the
 *        shard took about that much), slowly beyond (probing for room another writer left). Several writers sharing a stream, none knowing of the others,
 *        settle on shares that together fit the shard: each backs off when the shard refuses
 *        and probes again slowly. The clock is passed in (milliseconds); plain data, no
 *        clean-up.
 */
#ifndef KS_SHARDRATE_H
#define KS_SHARDRATE_H

#include <stdint.h>

/** A cut takes this share of the rate at least, the share of the answer's entries the shard
 *  throttled, up to KS_SHARDRATE_CUT_MAX: a stray throttle costs little, an oversubscribed
 *  shard (several writers) sheds what it was sent too much at once. */
#define KS_SHARDRATE_CUT_MIN 0.02
#define KS_SHARDRATE_CUT_MAX 0.3
/** Throttles within this long of a cut do not cut again: they answer what was sent before it. */
#define KS_SHARDRATE_CUT_INTERVAL_MS 1000
/** Accepted traffic raises the rate by this share of the ceiling per second, up to
 *  KS_SHARDRATE_RECOVER of the rate the last cut started from... */
#define KS_SHARDRATE_RAISE_FAST 0.05
#define KS_SHARDRATE_RECOVER 0.9
/** ...and by this share beyond it. */
#define KS_SHARDRATE_RAISE 0.01
/** The rate never goes below this share of the ceiling. */
#define KS_SHARDRATE_FLOOR 0.01

typedef struct ks_shardrate {
	double ceiling;        /**< limit x rate.limit.percent: the most it is raised to */
	double rate;           /**< per second, now */
	double before_cut;     /**< the rate the last cut started from (the ceiling before any) */
	int64_t last_cut_ms;   /**< INT64_MIN: never cut */
	int64_t last_raise_ms; /**< when accepted traffic last raised it */
} ks_shardrate;

/** @brief At its @p ceiling (per second) from @p now_ms. */
void ks_shardrate_init(ks_shardrate *r, double ceiling, int64_t now_ms);

/**
 * @brief The shard throttled @p share (0..1) of its entries in an answer at @p now_ms: cut the
 *        rate by that share (within KS_SHARDRATE_CUT_MIN .. KS_SHARDRATE_CUT_MAX, not below the
 *        floor), unless it was cut less than KS_SHARDRATE_CUT_INTERVAL_MS ago. @returns 1 when cut.
 */
int ks_shardrate_throttled(ks_shardrate *r, double share, int64_t now_ms);

/**
 * @brief The shard accepted an entry at @p now_ms: the rate rises by KS_SHARDRATE_RAISE_FAST
 *        (below KS_SHARDRATE_RECOVER of the rate before the last cut) or KS_SHARDRATE_RAISE of
 *        the ceiling per second since the last raise (at most one second's worth: a shard idle for
 *        long is not raised for its idleness), up to the ceiling. @returns 1 when it changed.
 */
int ks_shardrate_accepted(ks_shardrate *r, int64_t now_ms);

#endif

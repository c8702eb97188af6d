/**
 * @file shardlist.h
 * @brief What the writer knows of the stream's shards while it runs, and what it decides from
 *        it: when to list them again (ListShards: page by page, every shards.refresh.ms, soon
 *        after an answer named another shard than predicted, backing off with jitter while
 *        listings fail, one warning per outage), the hash-key range of every shard any listing
 *        named (ranges never change, so a shard closed since is still known), and what to do
 *        with an aggregate that landed in another shard than predicted.
 *
 * A lower layer of the writer (kinesis.c): it is handed the answers (ListShards pages, the shard
 * an entry landed in) and the time, and hands back decisions (list now, the map to use,
 * acknowledge, send the records outside a range again, hold until the next listing, send every
 * other key again). It sends nothing and holds no record.
 */
#ifndef KS_SHARDLIST_H
#define KS_SHARDLIST_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "shardmap.h"

typedef struct ks_shardlist ks_shardlist_t;

typedef struct ks_shardlist_opts {
	const char *stream;      /**< for log lines (borrowed) */
	int64_t refresh_ms;      /**< with a map, list this often (shards.refresh.ms); 0: only when asked */
	int64_t relist_ms;       /**< without a map, try this often */
	int64_t backoff_max_ms;  /**< longest wait after failed listings (the first waits about a second) */
	uint64_t seed;           /**< of the backoff's jitter (not 0) */
} ks_shardlist_opts;

/** What a ListShards answer leads to (ks_shardlist_answer). */
typedef enum ks_list_step {
	KS_LIST_NEXT = 0,   /**< ask for the next page (ks_shardlist_token) */
	KS_LIST_DONE,       /**< the map is complete: use it (ks_shardlist_take_map) */
	KS_LIST_FAILED      /**< the listing failed: tried again later (ks_shardlist_wake) */
} ks_list_step;

/** What to do with an accepted entry, given the shard it landed in (ks_shardlist_landed). */
typedef enum ks_land {
	KS_LAND_ACK = 0,    /**< landed where predicted, or a record alone: acknowledge it */
	KS_LAND_RANGE,      /**< the landed shard's range is known: send again the records outside it */
	KS_LAND_HOLD,       /**< not known yet: hold the aggregate until the listing under way or asked for */
	KS_LAND_OTHER_KEYS  /**< not known, nor soon: send again every key but the aggregate's first */
} ks_land;

/**
 * @brief Nothing known yet; the first listing is due @p o->relist_ms after @p now_ms unless a map
 *        is used before (ks_shardlist_use). @returns NULL when out of memory.
 * @locality the writer's thread (nothing here is locked)
 */
ks_shardlist_t *ks_shardlist_new(const ks_shardlist_opts *o, int64_t now_ms);
/** @brief Free; NULL is fine. */
void ks_shardlist_destroy(ks_shardlist_t *l);

/**
 * @brief @p map (finished, borrowed) is in use from @p now_ms: its shards' ranges are known from
 *        now on, the next periodic listing is due shards.refresh.ms later.
 * @returns 0, KS_ERR_NOMEM (the ranges not all kept).
 */
int ks_shardlist_use(ks_shardlist_t *l, const ks_shardmap_t *map, int64_t now_ms);

/** @brief Whether a listing should start now. */
int ks_shardlist_due(const ks_shardlist_t *l, int64_t now_ms);
/** @brief When the next listing is due (INT64_MAX: none is, or one is under way). */
int64_t ks_shardlist_wake(const ks_shardlist_t *l);
/**
 * @brief Whether an answer asked for a listing that has not succeeded yet: the map in use may be
 *        stale, so aggregates should not pack several keys together (one could land in a shard
 *        whose range is unknown).
 */
int ks_shardlist_stale(const ks_shardlist_t *l);
/** @brief Listings failed in a row (0: the last one succeeded). */
int ks_shardlist_failures(const ks_shardlist_t *l);

/** @brief A listing starts: its first page. @returns 0, KS_ERR_NOMEM. */
int ks_shardlist_begin(ks_shardlist_t *l, int64_t now_ms);
/** @brief The NextToken of the page to ask for, or NULL for the first page. */
const char *ks_shardlist_token(const ks_shardlist_t *l);
/**
 * @brief The answer to the page asked for: HTTP @p status (0: none, @p neterr says why) and
 *        @p body. A failure is logged once per outage (a warning; the success that ends it, an
 *        info line) and the next try waits a jittered backoff.
 */
ks_list_step ks_shardlist_answer(ks_shardlist_t *l, long status, const char *body, size_t len, const char *neterr,
				 int64_t now_ms);
/** @brief The page's request could not be sent (@p why): as a failed answer. */
void ks_shardlist_not_sent(ks_shardlist_t *l, const char *why, int64_t now_ms);
/**
 * @brief After KS_LIST_DONE: the new map (caller owns it), already in use as by ks_shardlist_use.
 * @returns the map, or NULL when the listing was not done.
 */
ks_shardmap_t *ks_shardlist_take_map(ks_shardlist_t *l);

/**
 * @brief The range of shard @p id, if any map used so far named it.
 * @returns 1 and the range in @p start .. @p end, or 0 when the shard is not known.
 */
int ks_shardlist_range(const ks_shardlist_t *l, const char *id, ks_u128 *start, ks_u128 *end);

/**
 * @brief An entry predicted for shard @p predicted was accepted by shard @p landed (either may
 *        be "" when not known). Another shard than predicted asks for a listing. @p aggregate:
 *        the entry is an aggregate of several keys' records (a record alone, or one key's, is
 *        kept by a KCL consumer wherever it lands). @p may_hold: the caller can hold it until
 *        the next listing (not after one: then the range is known or never will be).
 * @returns the decision; with KS_LAND_RANGE, the landed shard's range in @p start .. @p end.
 */
ks_land ks_shardlist_landed(ks_shardlist_t *l, const char *predicted, const char *landed, int aggregate,
			    int may_hold, ks_u128 *start, ks_u128 *end);

#endif

/**
 * @file shards.h
 * @brief The shard-aware side of the Kinesis writer: each record goes to the queue of the shard
 *        it is predicted to land in (shardmap.h), waits there for that shard's token buckets
 *        (ratelimit.h) instead of being sent to be throttled, and with aggregation=kpl is packed
 *        with the other records bound for the same shard into KPL aggregates (kpl.h).
 *
 * A queue holds units: a record alone, or the first record of an aggregate with the others
 * chained behind it (ks_record.agg, in the order they were added; ks_record.unit points back at
 * the first). The last unit of a shard's queue may still take records (unit_open). Units taken
 * for sending hold a reference to the map they were predicted in, so that their answer can be
 * checked against the prediction after the map was refreshed.
 *
 * Records of one partition key always hash to the same shard: a key's records that are added
 * in order stay in order inside an aggregate.
 */
#ifndef KS_SHARDS_H
#define KS_SHARDS_H

#include <stddef.h>
#include <stdint.h>

#include "keygate.h"
#include "shardmap.h"
#include "transform.h"

typedef struct ks_shards ks_shards_t;

typedef struct ks_shards_opts {
	int aggregate;            /**< pack the records of a shard into KPL aggregates */
	size_t agg_max_bytes;     /**< an aggregate's partition key plus data, at most */
	size_t agg_max_records;   /**< user records in one aggregate, at most */
	size_t max_record_bytes;  /**< the stream's largest record (partition key plus data) */
	double rate_percent;      /**< share of the service's per-shard limits; 0: no limits */
	int64_t linger_ms;        /**< how long an aggregate that is not full waits for more */
	struct ks_metrics *metrics; /**< per-shard series held while a map names the shard (NULL: none) */
	const char *stream;       /**< the series' stream label (borrowed) */
} ks_shards_opts;

/**
 * @brief Shard queues without a map yet. @returns NULL when out of memory.
 * @locality the writer's thread (nothing here is locked)
 */
ks_shards_t *ks_shards_new(const ks_shards_opts *o);
/** @brief Free the queues, the records queued in them and the maps no unit holds; NULL is fine. */
void ks_shards_destroy(ks_shards_t *s);
/** @brief The stream's largest record changed (DescribeStreamSummary). */
void ks_shards_set_max_record_bytes(ks_shards_t *s, size_t max_record_bytes);

/**
 * @brief Use @p map (finished; the queues own it from now on). Shards that stay keep their
 *        buckets; the queued units are taken apart by key and queued again by the new map.
 * @returns 0, KS_ERR_NOMEM (@p map is freed, the old map stays).
 */
int ks_shards_set_map(ks_shards_t *s, ks_shardmap_t *map, int64_t now_ms);
/** @brief The current map, or NULL before the first. */
const ks_shardmap_t *ks_shards_map(const ks_shards_t *s);

/**
 * @brief Queue @p rec, and the records chained behind it by `agg` (all of its key, in their
 *        order: they go in one unit), for their predicted shard.
 * @returns 0, KS_ERR_NOMEM (nothing queued).
 */
int ks_shards_add(ks_shards_t *s, ks_record *rec);

/**
 * @brief Queue @p chain (records chained by `agg`, of any keys, in their order) again: each key's
 *        records go together, in their order, to their predicted shard. For units whose map was
 *        replaced, and for the records of an aggregate that landed outside their range.
 * @returns 0, KS_ERR_NOMEM (what could not be queued is dropped from @p chain and freed: fatal).
 */
int ks_shards_add_chain(ks_shards_t *s, ks_record *chain);

/**
 * @brief ks_shards_add_chain, each key's records in a unit of their own that no other key joins:
 *        its hash key is its own, so it lands where the key does, whatever the map.
 * @returns 0, KS_ERR_NOMEM (as ks_shards_add_chain).
 */
int ks_shards_add_chain_solo(ks_shards_t *s, ks_record *chain);

/**
 * @brief While @p solo is set, records queued make units of one key (ks_shards_add_chain_solo):
 *        while the map may be stale, an aggregate of several keys could land in a shard whose
 *        range is not known, and then all but its first key would go again.
 */
void ks_shards_set_solo(ks_shards_t *s, int solo);

/**
 * @brief Whether @p rec (of the same key as @p in, which is queued) can join @p in's unit now:
 *        the unit is still open and stays within the aggregate limits.
 */
int ks_shards_can_join(const ks_shards_t *s, const ks_record *in, const ks_record *rec);
/** @brief Append @p rec to @p in's unit (after ks_shards_can_join said yes). */
void ks_shards_join(ks_shards_t *s, const ks_record *in, ks_record *rec);

/**
 * @brief Queue @p unit (taken before, its answer a failure to retry) again for its shard, as it
 *        is; by key, as ks_shards_add_chain does, when its map was replaced.
 * @returns 0, KS_ERR_NOMEM.
 */
int ks_shards_retry(ks_shards_t *s, ks_record *unit);

/**
 * @brief Take every queued unit for which @p take says 1 (it may mark the unit's records) out of
 *        the shard queues, appended to @p out in queue order. They hold no map any more, as
 *        records never queued: ks_shards_add_chain queues what is kept of them again.
 * @returns how many units were taken.
 */
size_t ks_shards_extract(ks_shards_t *s, int (*take)(void *ud, ks_record *unit), void *ud, ks_rqueue *out);

/**
 * @brief Move at most @p max_units units that may be sent now to @p out: closed or lingered long
 *        enough (or @p flush), and allowed by their shard's buckets, whose tokens they take. The
 *        caller asks for no more than its free requests take now, so that tokens are taken as
 *        units go into requests (a stall of the requests does not pile up taken units that
 *        then go at once). Sets @p wake_ms to when the next one could go (INT64_MAX: nothing
 *        waits, or the budget ran out).
 * @returns how many units were moved.
 */
size_t ks_shards_take(ks_shards_t *s, int64_t now_ms, int flush, size_t max_units, ks_rqueue *out,
		      int64_t *wake_ms);

/**
 * @brief The answer being read says the shard @p unit (taken) was predicted for throttled it or
 *        not (when it was predicted in the map in use); ks_shards_answer_done acts on it.
 */
void ks_shards_answered(ks_shards_t *s, const ks_record *unit, int throttled);
/**
 * @brief The answer was read: each shard it named has its rates cut by the share of its entries
 *        throttled, or raised when none was (shardrate.h).
 */
void ks_shards_answer_done(ks_shards_t *s, int64_t now_ms);
/**
 * @brief The current rates of shard @p id of the map in use.
 * @returns 1 and the rates, or 0 when the map does not name it.
 */
int ks_shards_rate(const ks_shards_t *s, const char *id, double *records_per_s, double *bytes_per_s);
/**
 * @brief The metric series of shard @p id of the map in use, whose range starts at @p start (as
 *        shardlist.c knows it): found by the map's binary search, not by name. NULL when the map
 *        in use does not name it.
 */
struct ks_shard_counters *ks_shards_counters_of(const ks_shards_t *s, const char *id, ks_u128 start);
/** @brief The metric series of the shard @p unit (taken) was predicted for, or NULL. */
struct ks_shard_counters *ks_shards_counters(const ks_record *unit);

/**
 * @brief What @p unit (a record alone, or the first of an aggregate) counts against a request
 *        and its shard's byte bucket: partition key plus data, or the aggregate's bound.
 */
size_t ks_shards_unit_bytes(const ks_record *unit);

/** @brief Units queued (not taken). */
size_t ks_shards_queued(const ks_shards_t *s);

/** @brief The decimal ExplicitHashKey of aggregate @p unit: its first record's hash key. */
void ks_shards_hash_key(const ks_record *unit, char out[KS_U128_STRLEN]);

/** @brief The shard @p unit (taken) was predicted for, or "" when none. */
const char *ks_shards_predicted(const ks_record *unit);

/**
 * @brief @p unit's aggregate is @p exact_bytes (partition key plus data) and not the bound its
 *        bucket was charged: the difference goes back to the bucket.
 */
void ks_shards_refund(ks_shards_t *s, const ks_record *unit, size_t exact_bytes);

/**
 * @brief Take the records of aggregate @p unit that hash outside @p start .. @p end (the range of
 *        the shard it landed in: a KCL consumer drops them) off it, chained in their order into
 *        @p outside (NULL: none). Its first record always stays: the aggregate's hash key is its.
 */
void ks_shards_split(ks_record *unit, ks_u128 start, ks_u128 end, ks_record **outside);

/**
 * @brief Take the records of other keys than its first record's off @p unit into @p outside:
 *        when the range of the shard it landed in cannot be known, those are the ones a KCL
 *        consumer may not see (sending them again may show some twice, never none).
 */
void ks_shards_keep_first_key(ks_record *unit, ks_record **outside);

/** @brief @p unit (taken) is done: its map may go. */
void ks_shards_unit_done(ks_shards_t *s, ks_record *unit);

/** @brief Free @p r and the records chained behind it by `agg`. */
void ks_shards_free_chain(ks_record *r);

#endif

/**
 * @file ratelimit.h
 * @brief Per-shard write limits as token buckets (the KPL's Limiter): one bucket of records
 *        and one of bytes per shard, each refilled continuously at its rate and holding at most
 *        one second of it. A record is sent only when both buckets hold enough, so a shard is
 *        never sent more than the service accepts and records wait in memory instead of being
 *        throttled. The clock is passed in (milliseconds), so tests need no sleeps.
 */
#ifndef KS_RATELIMIT_H
#define KS_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

/** One bucket. Plain data: caller storage, no clean-up. */
typedef struct ks_bucket {
	double tokens;   /**< available now (may go below 0 after a record larger than the bucket) */
	double rate;     /**< tokens added per second */
	double cap;      /**< most tokens held: one second of rate */
	double reserve;  /**< tokens a take leaves in the bucket (0 unless ks_limiter_reserve) */
	int64_t last_ms; /**< when tokens was last brought up to date */
} ks_bucket;

/** A shard's two buckets. */
typedef struct ks_shard_limiter {
	ks_bucket records;
	ks_bucket bytes;
} ks_shard_limiter;

/** The service's write limits per shard. */
#define KS_SHARD_RECORDS_PER_S 1000.0
#define KS_SHARD_BYTES_PER_S (1024.0 * 1024.0)

/** @brief A full bucket of @p rate tokens per second at @p now_ms. */
void ks_bucket_init(ks_bucket *b, double rate, int64_t now_ms);

/**
 * @brief Limits of one shard at @p percent of the service's (rate.limit.percent, as the KPL's
 *        RateLimit: 100 is the service's own limits).
 */
void ks_limiter_init(ks_shard_limiter *l, double percent, int64_t now_ms);

/**
 * @brief Keep @p seconds of each rate in the buckets: a take must leave that much (a take larger
 *        than the bucket still goes from a full one). The long-run rate stays the same; what the
 *        service sees may arrive later than it was taken, by up to that long, and still conform
 *        to its own buckets (a bucket that stays full while records are on their way loses that
 *        refill, and a request sent before another may arrive after it).
 */
void ks_limiter_reserve(ks_shard_limiter *l, double seconds);

/**
 * @brief Change @p b's rate to @p rate per second at @p now_ms (what was refilled until now at
 *        the old one is kept): it holds one second of the new rate at most, and keeps the same
 *        seconds of it as reserve.
 */
void ks_bucket_set_rate(ks_bucket *b, double rate, int64_t now_ms);

/**
 * @brief Take one record of @p bytes (partition key plus data) if both buckets allow it now.
 *        A record larger than the byte bucket goes when the bucket is full and leaves it in
 *        debt, which later records wait out.
 * @returns 1 taken, 0 not now (nothing taken).
 */
int ks_limiter_take(ks_shard_limiter *l, size_t bytes, int64_t now_ms);

/**
 * @brief Milliseconds until a record of @p bytes could be taken (0: now), for the writer's
 *        next wake-up.
 */
int64_t ks_limiter_wait_ms(ks_shard_limiter *l, size_t bytes, int64_t now_ms);

#endif

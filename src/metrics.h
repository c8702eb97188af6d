/**
 * @file metrics.h
 * @brief Counters every stage updates, and the HTTP endpoint (libmicrohttpd) that serves
 *        them as Prometheus text on /metrics, plus /healthz and /readyz.
 *
 * Counters, gauges and histograms (their sums too) are updated with relaxed atomics, by the
 * pipeline thread and the decode lanes, and read by the HTTP thread; a module that is given a
 * NULL ks_metrics pointer simply counts nothing.
 */
#ifndef KS_METRICS_H
#define KS_METRICS_H

#include <stdint.h>

#include "common.h"

/** Histogram with fixed upper bounds (Prometheus `le`); the last bucket is +Inf. */
#define KS_HIST_BUCKETS 12
typedef struct ks_hist {
	uint64_t bucket[KS_HIST_BUCKETS + 1];
	uint64_t count;
	double sum;
} ks_hist;

/** Reasons a record may be bad (label `reason`); keep in step with ks_metrics_reason_names. */
typedef enum ks_bad_reason {
	KS_BAD_DECODE = 0,   /**< not decodable in the configured input format */
	KS_BAD_TRANSFORM,    /**< e.g. a primary-key column missing */
	KS_BAD_TOO_LARGE,    /**< data plus key over 1 MiB */
	KS_BAD_KEY,          /**< partition key empty */
	KS_BAD_NON_ROW,      /**< Debezium truncate/message events (skipped with a warning) */
	KS_BAD__COUNT
} ks_bad_reason;

/** Error codes of failed PutRecords entries / requests (label `code`). */
typedef enum ks_put_code {
	KS_PUTERR_THROTTLED = 0, /**< ProvisionedThroughputExceeded, LimitExceeded, KMSThrottling */
	KS_PUTERR_INTERNAL,      /**< InternalFailure and other per-entry codes */
	KS_PUTERR_HTTP_5XX,
	KS_PUTERR_NETWORK,       /**< connection refused/reset, timeout */
	KS_PUTERR_EXPIRED_TOKEN,
	KS_PUTERR_FATAL,         /**< validation, access denied, not found */
	KS_PUTERR__COUNT
} ks_put_code;

typedef struct ks_metrics {
	uint64_t records_consumed;
	uint64_t fetch_restarts;     /**< stalled partitions whose fetch was restarted */
	uint64_t records_decoded;
	uint64_t records_bad[KS_BAD__COUNT];
	uint64_t records_put_ok;
	uint64_t records_put_failed[KS_PUTERR__COUNT];
	uint64_t records_retried;
	uint64_t records_throttled;
	uint64_t records_dead_lettered;
	uint64_t records_dead_lettered_truncated; /**< as a reference record: the topic refused the whole */
	uint64_t records_skipped;
	uint64_t bytes_put;
	uint64_t requests_sent;
	uint64_t credential_refreshes;
	int64_t inflight_records;   /**< gauge */
	int64_t inflight_bytes;     /**< gauge */
	int64_t paused_partitions;  /**< gauge */
	int64_t assigned_partitions;/**< gauge */
	int64_t last_loop_ms;       /**< monotonic ms of the last pipeline loop turn (/healthz) */
	int64_t retrying_since_ms;  /**< 0, or monotonic ms since which puts keep failing (/readyz) */
	int64_t last_put_ok_ms;     /**< monotonic ms of the last accepted PutRecords (/readyz) */
	int kinesis_reachable;      /**< stream check passed and no fatal error since */
	int stream_open_shards;     /**< gauge: open shards of the stream as last listed */
	uint64_t shard_map_refreshes;   /**< shard maps listed again while running */
	uint64_t shard_mispredictions;  /**< entries that landed in another shard than predicted */
	uint64_t records_resent_reshard;/**< user records sent again: their aggregate landed outside their range */
	struct ks_shard_counters *shards; /**< per stream and shard; ks_metrics_shard_add, ks_metrics_clean */
	struct ks_stream_latency *latencies; /**< per stream; ks_metrics_stream_latency, ks_metrics_clean */
	unsigned char shards_lock;      /**< spin lock of @c shards and @c latencies (zero: free) */
	ks_hist put_latency_ms;     /**< PutRecords request latency */
	ks_hist batch_records;      /**< records per PutRecords request */
} ks_metrics;

#define KS_METRIC_ADD(m, field, n)                                                 \
	do {                                                                       \
		if (m)                                                             \
			__atomic_add_fetch(&(m)->field, (n), __ATOMIC_RELAXED);    \
	} while (0)
#define KS_METRIC_SET(m, field, v)                                                 \
	do {                                                                       \
		if (m)                                                             \
			__atomic_store_n(&(m)->field, (v), __ATOMIC_RELAXED);      \
	} while (0)

/**
 * @brief Count what shard @p shard of stream @p stream was sent: user records and bytes it
 *        accepted, and entries it throttled. @locality any thread
 * @returns 0, KS_ERR_NOMEM (not counted).
 */
int ks_metrics_shard_add(ks_metrics *m, const char *stream, const char *shard, uint64_t records, uint64_t bytes,
			 uint64_t throttled);

/**
 * @brief The series of shard @p shard of stream @p stream, made on the first call, held until as
 *        many ks_metrics_shard_release: whoever writes to the shard keeps the pointer and counts
 *        with relaxed atomics (ks_metrics_shard_count), no lookup, no lock.
 * @returns the series (borrowed), NULL when @p m is NULL or memory ran out. @locality any thread
 */
struct ks_shard_counters *ks_metrics_shard_hold(ks_metrics *m, const char *stream, const char *shard);
/**
 * @brief Let go of @p c (from ks_metrics_shard_hold; NULL is fine): with the last holder gone
 *        (the shard closed), its series are no longer shown. @locality any thread
 */
void ks_metrics_shard_release(ks_metrics *m, struct ks_shard_counters *c);
/** @brief Count on a held series (NULL is fine), as ks_metrics_shard_add. */
void ks_metrics_shard_count(struct ks_shard_counters *c, uint64_t records, uint64_t bytes, uint64_t throttled);
/**
 * @brief The shard's current write rates (per second: records, bytes), shown as
 *        kinesink_shard_rate_limit while the series is held. NULL is fine.
 */
void ks_metrics_shard_rate(struct ks_shard_counters *c, double records_per_s, double bytes_per_s);
/** Upper bounds of kinesink_record_latency_seconds in ms, 5 ms to 10 min (then +Inf). */
#define KS_LAT_BUCKETS 16
extern const int64_t ks_record_latency_bounds_ms[KS_LAT_BUCKETS];

/**
 * One stream's end-to-end latency: from each record's Kafka timestamp to Kinesis'
 * acknowledgement of it. Made once per stream by ks_metrics_stream_latency and kept until
 * ks_metrics_clean, so whoever acknowledges holds the pointer and observes with a few relaxed
 * atomic adds: no lookup, no lock. Records whose timestamp cannot give a latency are counted
 * instead of observed.
 */
typedef struct ks_stream_latency {
	struct ks_stream_latency *next;
	char *stream;
	uint64_t bucket[KS_LAT_BUCKETS + 1]; /**< per bucket, not cumulative; the last one is +Inf */
	uint64_t sum_ms;
	uint64_t no_timestamp;     /**< the Kafka message had no timestamp */
	uint64_t future_timestamp; /**< its timestamp was after the acknowledgement (a producer's clock ahead) */
} ks_stream_latency;

/**
 * @brief The latency figures of @p stream, made (all zero) on the first call for it and
 *        shown from then on. @returns the borrowed figures (valid until ks_metrics_clean), or
 *        NULL when @p m is NULL or memory ran out (ks_latency_observe then counts nothing).
 * @locality any thread
 */
ks_stream_latency *ks_metrics_stream_latency(ks_metrics *m, const char *stream);

/**
 * @brief One record acknowledged at wall-clock @p now_ms whose Kafka timestamp is @p ts_ms
 *        (<= 0: none): observed as the latency now_ms - ts_ms, or counted as having no or a
 *        future timestamp. @p l may be NULL. @locality any thread (the writer's acknowledgements)
 */
void ks_latency_observe(ks_stream_latency *l, int64_t ts_ms, int64_t now_ms);

/** @brief Free what the metrics allocated (the per-shard counters); the counters stay. */
void ks_metrics_clean(ks_metrics *m);

/** @brief Record @p v into histogram @p h (bounds @p bounds, KS_HIST_BUCKETS of them). @locality any thread */
void ks_hist_observe(ks_hist *h, const double *bounds, double v);
extern const double ks_latency_bounds_ms[KS_HIST_BUCKETS];
extern const double ks_batch_bounds[KS_HIST_BUCKETS];

/** Per-partition view the pipeline hands to the endpoint on each scrape. */
typedef struct ks_partition_stat {
	char topic[256];
	int32_t partition;
	int64_t lag;             /**< -1 unknown */
	int64_t committed;       /**< -1 none */
	int64_t last_acked;      /**< -1 none */
	int64_t behind_ms;       /**< how far behind the partition is (ks_ptrack_behind_ms), -1 unknown */
	int paused;
} ks_partition_stat;

/**
 * Callback the server calls (on its own thread) to fill per-partition stats; the pipeline
 * implements it under its own lock. Writes at most @p max entries, returns how many.
 */
typedef int (*ks_partition_stats_fn)(void *opaque, ks_partition_stat *out, int max);

typedef struct ks_metrics_server ks_metrics_server_t;

/**
 * @brief Start the endpoint on @p listen ("host:port"). @p delivery_timeout_ms drives /readyz.
 * @returns the server (caller destroys) or NULL with @p err set.
 * @locality main thread
 */
ks_metrics_server_t *ks_metrics_server_new(const char *listen, ks_metrics *m,
					   ks_partition_stats_fn stats, void *opaque,
					   int64_t delivery_timeout_ms, ks_errbuf *err);
/** @brief Stop and free; NULL is fine. */
void ks_metrics_server_destroy(ks_metrics_server_t *s);

/** @brief Render the Prometheus text of @p m (+ partition stats) into @p out (tests use this directly). */
int ks_metrics_render(const ks_metrics *m, const ks_partition_stat *parts, int nparts, ks_buf *out);

#endif

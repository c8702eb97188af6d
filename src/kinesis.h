/**
 * @file kinesis.h
 * @brief The Kinesis writer: batches records to the service limits, sends PutRecords over
 *        the libcurl multi interface (SigV4-signed), acknowledges each accepted entry, sends
 *        again only the failed ones with jittered exponential backoff, and keeps per-key
 *        order (ordering=key: never two records of one partition key in flight).
 *
 * The transport and the clock are passed in (ks_kinesis_new_io), so the state machine can be
 * driven without sockets or sleeps; ks_kinesis_new uses the libcurl multi transport and the
 * monotonic clock.
 */
#ifndef KS_KINESIS_H
#define KS_KINESIS_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "conf.h"
#include "creds.h"
#include "http.h"
#include "metrics.h"
#include "shardmap.h"
#include "transform.h"

typedef struct ks_kinesis ks_kinesis_t;

/** Callbacks into the pipeline, called from ks_kinesis_poll on the pipeline thread. */
typedef struct ks_kinesis_cbs {
	/** Kinesis accepted @p rec. The writer frees @p rec after the call returns. */
	void (*acked)(void *opaque, ks_record *rec, const char *shard_id, const char *seq);
	/**
	 * @p rec can never be delivered (delivery.timeout.ms ran out, or a permanent per-record
	 * rejection). The writer frees @p rec after the call. A fatal, process-wide error is
	 * reported by ks_kinesis_poll's return value instead.
	 */
	void (*failed)(void *opaque, ks_record *rec, const ks_errbuf *err);
	void *opaque;
	/**
	 * @p rec will never be sent: its partition was revoked (ks_kinesis_revoke). It is neither
	 * acknowledged nor failed (its offset is not committed; the partition's new owner reads it
	 * again). The writer frees @p rec after the call. NULL: not told.
	 */
	void (*dropped)(void *opaque, ks_record *rec);
} ks_kinesis_cbs;

/**
 * @brief Create the writer (no network yet). @p creds is borrowed.
 * @returns writer (caller destroys) or NULL with @p err set.
 * @locality pipeline thread
 */
ks_kinesis_t *ks_kinesis_new(const ks_conf *conf, ks_creds_t *creds, ks_metrics *metrics,
			     const ks_kinesis_cbs *cbs, ks_errbuf *err);
/** What the writer talks to, and when it thinks it is. */
typedef struct ks_kinesis_io {
	const ks_http_transport *transport;  /**< NULL: ks_http_multi */
	void *transport_ud;                  /**< handed to transport->open as opts->ud */
	int64_t (*now_ms)(void *ud);         /**< monotonic milliseconds; NULL: ks_now_ms */
	void *clock_ud;                      /**< passed to now_ms */
	uint64_t seed;                       /**< the backoff jitter's; 0: from the time and process id */
} ks_kinesis_io;

/**
 * @brief ks_kinesis_new with the transport and the clock of @p io (NULL: the defaults).
 *        Signing still uses the wall clock, as AWS checks it.
 * @returns writer (caller destroys) or NULL with @p err set.
 * @locality pipeline thread
 */
ks_kinesis_t *ks_kinesis_new_io(const ks_conf *conf, ks_creds_t *creds, ks_metrics *metrics,
				const ks_kinesis_cbs *cbs, const ks_kinesis_io *io, ks_errbuf *err);
/** @brief Free everything, dropping records still held (they are not acknowledged). */
void ks_kinesis_destroy(ks_kinesis_t *k);

/**
 * @brief Check a record against the per-record limits: a partition key of 1 to 256 Unicode
 *        characters (as Kinesis counts them: ks_key_chars, not bytes), key plus data at
 *        most 1 MiB (the default record size; ks_kinesis_submit checks the stream's own).
 * @returns 0 or KS_ERR_BADREC with reason "too_large" / "bad_key" and a clear text.
 */
int ks_kinesis_validate(const ks_record *rec, ks_errbuf *err);

/**
 * @brief The stream's maximum record size (partition key plus data), from
 *        DescribeStreamSummary's MaxRecordSizeInKiB: records over it are bad records
 *        ("too_large"); over 1 MiB, requests may carry up to 10 MiB. Out of 1..10 MiB: 1 MiB.
 * @locality pipeline thread, before the first ks_kinesis_submit
 */
void ks_kinesis_set_max_record_bytes(ks_kinesis_t *k, size_t max_record_bytes);

/**
 * @brief The stream's record distribution strategy (DescribeStreamSummary's
 *        RecordDistributionStrategy; "" is the default, USER_PARTITION_KEY). With AUTO the
 *        service ignores partition keys and explicit hash keys: no shard can be predicted and a
 *        key's records may land in different shards. Then type=upsert and type=debezium, whose
 *        contract is each key's changes in order, are refused unless ordering=none; otherwise the
 *        writer sends records as they come: no shard map, per-shard buckets or aggregation (a KCL
 *        consumer would drop an aggregate's records that land outside their hash key's shard);
 *        with rate.limit.percent, the open shards' limits together (from the map handed to
 *        ks_kinesis_set_shardmap) bound what it sends.
 *        While running, each listing of the shards starts with DescribeStreamSummary, so a stream
 *        switched to AUTO is noticed: the same rule then stops the writer (ks_kinesis_poll
 *        reports it) or makes it go on without shards.
 * @returns 0, or KS_ERR_FATAL with @p err naming the stream and the strategy.
 * @locality pipeline thread, before the first ks_kinesis_submit
 */
int ks_kinesis_set_distribution(ks_kinesis_t *k, const char *strategy, ks_errbuf *err);

/**
 * @brief The stream's shard map (from ks_stream_list_shards; the writer owns it from now on).
 *        With rate.limit.percent or aggregation=kpl, records then go by their predicted shard:
 *        they wait for its token buckets, are aggregated per shard, and the map is listed
 *        again when answers say it changed and every shards.refresh.ms. Otherwise it is freed.
 * @returns 0, KS_ERR_NOMEM (the writer stops: ks_kinesis_poll reports it).
 * @locality pipeline thread
 */
int ks_kinesis_set_shardmap(ks_kinesis_t *k, ks_shardmap_t *map);

/**
 * @brief Hand @p rec to the writer, which owns it from now on (acked or failed callback
 *        later). Validates first: on KS_ERR_BADREC the caller keeps ownership.
 */
int ks_kinesis_submit(ks_kinesis_t *k, ks_record *rec, ks_errbuf *err);

/**
 * @brief Drive the writer: close batches that are due, start requests, process answers,
 *        call the callbacks. Waits at most @p timeout_ms for network activity, or for
 *        @p wake_fd (readable) when >= 0, so Kafka events also wake the loop.
 * @returns 0, or KS_ERR_FATAL / KS_ERR_AUTH with @p err (the process must stop).
 */
int ks_kinesis_poll(ks_kinesis_t *k, int timeout_ms, int wake_fd, ks_errbuf *err);

/** @brief Send whatever is batched now instead of waiting for batch.linger.ms. */
void ks_kinesis_flush(ks_kinesis_t *k);

/**
 * @brief Partitions were revoked: from now on no record for which @p revoked says 1 is sent.
 *        Those not sent yet (submitted, waiting in the key gate, in shard queues and aggregates,
 *        waiting to be retried) are dropped now (the dropped callback): an aggregate that also
 *        holds other records goes on with those, and a dropped record's key goes on with its
 *        next record. Those in flight are marked: accepted, they are acknowledged; otherwise
 *        (a failure to retry, records an aggregate carried outside their shard) they are
 *        dropped instead of sent again. @p revoked is called during this call only.
 * @returns records of those partitions still in flight (ks_kinesis_revoked_inflight).
 * @locality pipeline thread, between two ks_kinesis_poll
 */
size_t ks_kinesis_revoke(ks_kinesis_t *k, ks_record_pred revoked, void *ud);
/**
 * @brief Records marked by ks_kinesis_revoke that are still in flight (or accepted into a shard
 *        not known yet): until it is 0, one of them may still land.
 */
size_t ks_kinesis_revoked_inflight(const ks_kinesis_t *k);

/** @brief Records held by the writer (queued, waiting for their key, or in flight). */
size_t ks_kinesis_inflight_records(const ks_kinesis_t *k);
/** @brief Bytes (keys plus data) held by the writer. */
size_t ks_kinesis_inflight_bytes(const ks_kinesis_t *k);

#endif

/**
 * @file transform.h
 * @brief Turn a change into 0, 1 or 2 output records for the configured `type`
 *        (append-only, debezium, upsert): partition key + data bytes (DESIGN.md, output types).
 */
#ifndef KS_TRANSFORM_H
#define KS_TRANSFORM_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"
#include "conf.h"
#include "decode.h"
#include "json_write.h"

/** Kinesis limits. */
#define KS_MAX_PKEY_LEN 256
#define KS_MAX_RECORD_BYTES (1024 * 1024)   /**< data plus partition key */
#define KS_MAX_DATA_BYTES (10 * 1024 * 1024) /**< the largest record any stream takes (MaxRecordSizeInKiB) */

/**
 * One output record: partition key and data, both stored inline after the struct (one
 * allocation). `origin` is the pipeline's handle on the Kafka message it came from; the
 * writer hands it back untouched when the record is acknowledged.
 */
typedef struct ks_record {
	struct ks_record *next;   /**< queue link: used by whichever stage holds the record */
	char *pkey;               /**< NUL-terminated, 1..256 characters (UTF-16 code units, as Kinesis counts) */
	size_t pkey_len;
	unsigned char *data;      /**< 0..1 MiB; may be empty (a tombstone) */
	size_t data_len;
	uint64_t key_hash;        /**< hash of pkey (per-key ordering) */
	void *origin;             /**< pipeline's per-partition tracker (borrowed) */
	int64_t offset;           /**< Kafka offset of the message it came from */
	int64_t kafka_ts_ms;      /**< that message's Kafka timestamp, ms since the epoch (<= 0: none) */
	/* Writer bookkeeping. */
	struct ks_record *agg;    /**< aggregation=kpl: the next record sent in this one's aggregate */
	size_t agg_n;             /**< on the first record of an aggregate: how many follow it */
	size_t agg_cost;          /**< on the first record: bound of the aggregate's bytes */
	struct ks_record *agg_tail; /**< on the first record of a shard's aggregate: its last record */
	struct ks_record *unit;   /**< shard-aware writer: the first record of the unit it is sent in */
	void *shardset;           /**< on the first record: the shard map its shard was predicted in */
	int shard;                /**< on the first record: the predicted shard's index in that map */
	int unit_open;            /**< on the first record: still taking records (aggregation=kpl) */
	int hash_key_ok;          /**< hash_key is set */
	int revoked;              /**< its partition was revoked while it was sent: never sent again */
	unsigned __int128 hash_key; /**< MD5 of pkey as Kinesis routes it (shard-aware writer) */
	int attempts;
	int64_t first_try_ms;
	int64_t not_before_ms;
} ks_record;

/** Whether @p rec is one of a set (ks_kinesis_revoke: of a revoked partition). */
typedef int (*ks_record_pred)(void *ud, const ks_record *rec);

/** @brief Allocate a record holding copies of @p pkey and @p data. NULL on allocation failure. */
ks_record *ks_record_new(const char *pkey, size_t pkey_len, const void *data, size_t data_len);
/** @brief Free; NULL is fine. */
void ks_record_destroy(ks_record *r);
/** @brief Stable 64-bit hash of a partition key (FNV-1a). */
uint64_t ks_key_hash(const char *p, size_t n);


typedef struct ks_transform ks_transform_t;

/**
 * @brief Create the transform for @p conf (type, primary_key, force_append_only, tombstones).
 * @returns the transform (caller destroys) or NULL with @p err set.
 */
ks_transform_t *ks_transform_new(const ks_conf *conf, ks_errbuf *err);
void ks_transform_destroy(ks_transform_t *t);

/**
 * @brief Produce the records of change @p c into @p out (caller owns them afterwards).
 *        Tombstones (null values) give 0 records; truncate/message events are KS_ERR_BADREC
 *        with reason "non_row_event" (the pipeline skips them before calling this).
 * @returns the number of records (0, 1 or 2), or KS_ERR_BADREC with @p err naming the
 *          topic/partition/offset and the column (stage=transform; reason "too_large" for a
 *          record over KS_MAX_DATA_BYTES), or KS_ERR_NOMEM.
 * @locality pipeline thread
 */
int ks_transform_apply(ks_transform_t *t, const ks_change *c, ks_record *out[2], ks_errbuf *err);

#endif

/**
 * @file stream.h
 * @brief The Kinesis stream as the service describes it (control plane), apart from the
 *        writer: DescribeStreamSummary at start-up and for --check --connect, ListShards.
 */
#ifndef KS_STREAM_H
#define KS_STREAM_H

#include "common.h"
#include "conf.h"
#include "creds.h"
#include "metrics.h"
#include "shardmap.h"

/** The stream as DescribeStreamSummary tells it. */
typedef struct ks_stream_info {
	char status[32];          /**< ACTIVE, UPDATING, ... */
	size_t max_record_bytes;  /**< MaxRecordSizeInKiB * 1024; 1 MiB when the answer has none */
	int open_shards;          /**< OpenShardCount; -1 when the answer has none */
	char distribution[32];    /**< RecordDistributionStrategy: "AUTO", "USER_PARTITION_KEY", or "" when not said (the default, partition keys) */
} ks_stream_info;

/**
 * @brief DescribeStreamSummary of conf->stream: it exists and is ACTIVE or UPDATING; sets
 *        kinesis_reachable in @p m (may be NULL). @p creds is borrowed.
 * @returns 0; KS_ERR_FATAL / KS_ERR_AUTH with a message naming stream, region, endpoint and the
 *          AWS request id; KS_ERR_IO when the endpoint cannot be reached or answers 5xx.
 * @locality any thread (blocking)
 */
int ks_stream_describe(const ks_conf *conf, ks_creds_t *creds, ks_metrics *m, ks_errbuf *err);

/**
 * @brief ks_stream_describe that also fills @p info (may be NULL) from the answer.
 * @returns as ks_stream_describe.
 * @locality any thread (blocking)
 */
int ks_stream_describe_info(const ks_conf *conf, ks_creds_t *creds, ks_metrics *m, ks_stream_info *info,
			    ks_errbuf *err);

/** @brief The body of a DescribeStreamSummary call for conf->stream. @returns 0, KS_ERR_NOMEM. */
int ks_stream_describe_body(ks_buf *body, const ks_conf *conf);
/**
 * @brief The RecordDistributionStrategy a DescribeStreamSummary answer @p json names, into @p out
 *        ("" when it names none, or is not such an answer).
 */
void ks_stream_summary_distribution(const char *json, size_t len, char *out, size_t n);

/**
 * @brief The stream's open shards: ListShards (ShardFilter AT_LATEST) page after page (the
 *        first names the stream, the next ones only NextToken), finished into a checked map.
 * @returns 0 with the map in @p out (caller destroys); KS_ERR_FATAL / KS_ERR_AUTH / KS_ERR_IO
 *          as ks_stream_describe; KS_ERR_BADREC when the pages do not make a consistent map
 *          (a snapshot mid-reshard: list again), each naming stream, region and page.
 * @locality any thread (blocking)
 */
int ks_stream_list_shards(const ks_conf *conf, ks_creds_t *creds, ks_shardmap_t **out, ks_errbuf *err);

/**
 * @brief The body of a ListShards call: the stream and the open shards' filter on the first
 *        page (@p next_token NULL), the token alone on the next ones.
 * @returns 0, KS_ERR_NOMEM.
 */
int ks_stream_list_body(ks_buf *body, const ks_conf *conf, const char *next_token);

#endif

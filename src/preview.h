/**
 * @file preview.h
 * @brief `--preview N`: read a few messages of the configured topics and show what the writer
 *        would send for each (partition key and data), or what errors.policy would do with a
 *        bad one, through the same decode and transform code as a run (prepare.h). Nothing is
 *        written to Kinesis and nothing is committed.
 *
 * The preview never joins the consumer group: a member joining a group that a running fleet
 * uses would trigger a rebalance and take partitions away from it. It assigns the topics'
 * partitions itself (rd_kafka_assign) at the group's committed offsets, which librdkafka
 * fetches with an OffsetFetch request that needs group.id but no membership.
 */
#ifndef KS_PREVIEW_H
#define KS_PREVIEW_H

#include <librdkafka/rdkafka.h>
#include <stdio.h>

#include "common.h"
#include "conf.h"
#include "signals.h"

typedef enum ks_preview_format {
	KS_PREVIEW_TEXT = 0, /**< one human-readable line per record */
	KS_PREVIEW_JSON,     /**< one JSON object per line */
} ks_preview_format;

typedef struct ks_preview_opts {
	long max_messages;        /**< stop after this many Kafka messages (> 0) */
	int from_beginning;       /**< 1: start at each partition's first offset, not the committed one */
	ks_preview_format format;
	int metadata_timeout_ms;  /**< how long to wait for the brokers (0: 10 s) */
} ks_preview_opts;

/**
 * @brief Run the preview: print one line (or JSON object) per output record, bad record or
 *        message that makes no record to @p out, and a summary line to stderr. Returns after
 *        @p o->max_messages messages, once every partition is at its end, or when @p stop is set.
 * @returns 0; KS_ERR_IO when the brokers cannot be reached or a topic is missing; KS_ERR_FATAL
 *          when decoding cannot go on (e.g. the Schema Registry stays unreachable); @p err says
 *          what and what to do.
 * @locality main thread
 */
int ks_preview_run(const ks_conf *conf, const ks_preview_opts *o, FILE *out, const ks_stop *stop,
		   ks_errbuf *err);

/**
 * @brief Ask the brokers (within @p timeout_ms) for the partitions of conf->topic (a
 *        comma-separated list, or a ^regex matched against every topic of the cluster).
 *        @p brokers (may be NULL) gets the number of brokers the cluster announced.
 * @returns 0 and a new list in @p out (caller destroys; offsets RD_KAFKA_OFFSET_INVALID);
 *          KS_ERR_IO when the brokers did not answer; KS_ERR_NOTFOUND when a listed topic does
 *          not exist, or the regex matches none; KS_ERR_AUTH when a topic is not authorized.
 */
int ks_preview_partitions(rd_kafka_t *rk, const ks_conf *conf, int timeout_ms, int *brokers,
			  rd_kafka_topic_partition_list_t **out, ks_errbuf *err);

/** @brief The value of kafka.@p key in @p conf (borrowed), or NULL. */
const char *ks_preview_kafka_value(const ks_conf *conf, const char *key);

#endif

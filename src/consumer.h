/**
 * @file consumer.h
 * @brief The Kafka side: a librdkafka high-level consumer in a group, configured so that no
 *        offset is stored or committed behind kinesink's back, its log routed into ours, and its
 *        queue able to wake the pipeline's poll through a pipe.
 */
#ifndef KS_CONSUMER_H
#define KS_CONSUMER_H

#include <librdkafka/rdkafka.h>

#include "common.h"
#include "conf.h"
#include "decode.h"

/** Rebalance handler: assign or revoke @p parts (librdkafka's rebalance callback, forwarded). */
typedef void (*ks_rebalance_fn)(rd_kafka_t *rk, rd_kafka_resp_err_t err,
				rd_kafka_topic_partition_list_t *parts, void *opaque);

/** Commit result: @p offsets with a per-partition err (librdkafka's offset commit callback). */
typedef void (*ks_committed_fn)(rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t *offsets, void *opaque);

/**
 * @brief Create the consumer and subscribe to conf->topic. Defaults: group.id=kinesink,
 *        enable.auto.offset.store=false, enable.auto.commit=false (commits are explicit),
 *        partition.assignment.strategy=cooperative-sticky, enable.partition.eof with
 *        --exit-at-eof; every kafka.* key overrides them (except the two offset keys).
 *        @p wake_fd (>= 0) is written to whenever the consumer queue becomes non-empty.
 *        @p committed is told the outcome of every commit (from the consumer's poll).
 * @returns the handle (caller closes and destroys) or NULL with @p err set.
 */
rd_kafka_t *ks_consumer_new(const ks_conf *conf, ks_rebalance_fn rebalance, ks_committed_fn committed,
			    void *opaque, int wake_fd, ks_errbuf *err);

/** @brief Destroy a consumer made by ks_consumer_new (after rd_kafka_consumer_close); NULL is fine. */
void ks_consumer_destroy(rd_kafka_t *rk);

/** @brief The decoder's view of a Kafka message (pointers borrowed from @p m). */
void ks_consumer_msg(const rd_kafka_message_t *m, ks_msg *out);

/**
 * @brief Whether a broker refused the consumer's AWS MSK IAM authentication (a failure the
 *        worker cannot get past by retrying with the same credentials; librdkafka would retry
 *        forever). @returns 0, or KS_ERR_AUTH with the reason and what to check in @p err.
 * @locality any thread
 */
int ks_consumer_auth_failed(rd_kafka_t *rk, ks_errbuf *err);

#endif

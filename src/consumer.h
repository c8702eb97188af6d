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

/**
 * @brief The consumer's librdkafka configuration exactly as ks_consumer_new builds it (defaults,
 *        kafka.* settings, the offset keys forced off), without callbacks.
 * @returns a configuration the caller owns, or NULL with @p err set.
 */
rd_kafka_conf_t *ks_consumer_conf_new(const ks_conf *conf, ks_errbuf *err);

/**
 * @brief Run librdkafka's own checks on @p kc (the cross-property rules of rd_kafka_new) without
 *        touching the network: the handle is made with no broker and destroyed at once.
 *        Consumes @p kc.
 * @returns 0, or KS_ERR_CONFIG with librdkafka's reason in @p errstr.
 */
int ks_consumer_try_offline(rd_kafka_type_t type, rd_kafka_conf_t *kc, char *errstr, size_t size);

/**
 * @brief Reject, offline, what ks_consumer_new would reject at start, with the same message.
 * @returns 0 or KS_ERR_CONFIG with @p err set.
 */
int ks_consumer_check(const ks_conf *conf, ks_errbuf *err);

/** @brief Destroy a consumer made by ks_consumer_new (after rd_kafka_consumer_close); NULL is fine. */
void ks_consumer_destroy(rd_kafka_t *rk);

/** @brief The decoder's view of a Kafka message (pointers borrowed from @p m). */
void ks_consumer_msg(const rd_kafka_message_t *m, ks_msg *out);

#endif

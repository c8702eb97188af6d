/**
 * @file policy.h
 * @brief errors.policy: what happens to a bad record (skip it, dead-letter it, or stop), and to
 *        the events that are not row changes. A record's offset counts as done through the
 *        offsets tracker: at once when skipped, once Kafka confirmed its dead letter.
 */
#ifndef KS_POLICY_H
#define KS_POLICY_H

#include <librdkafka/rdkafka.h>

#include "common.h"
#include "conf.h"
#include "decode.h"
#include "metrics.h"
#include "offsets.h"
#include "signals.h"

typedef struct ks_policy ks_policy_t;

/** What the policy asks of the loop. */
typedef struct ks_policy_cbs {
	/**
	 * The worker must stop (@p msg says why). @p drain: the input is the cause, so the records
	 * already handed to the writer are finished and committed first.
	 */
	void (*fatal)(void *opaque, int drain, const char *msg);
	void *opaque;
} ks_policy_cbs;

/**
 * @brief The policy of @p conf (with errors.policy=dlq, its dead-letter producer). @p stop ends
 *        a wait for room in the producer's queue. @returns NULL with @p err set on failure.
 * @locality the pipeline thread, as every ks_policy_* below
 */
ks_policy_t *ks_policy_new(const ks_conf *conf, ks_metrics *m, const ks_policy_cbs *cbs,
			   const ks_stop *stop, ks_errbuf *err);
/** @brief Flush the dead letters (5 s at most) and free; NULL is fine. */
void ks_policy_destroy(ks_policy_t *pol);

/**
 * @brief Apply errors.policy to bad record @p msg, for which @p part waits for one more ack
 *        (@p err: stage, reason, text). skip acks it now, dlq once Kafka confirmed the dead
 *        letter, fail stops the worker with the offset still pending.
 */
void ks_policy_bad_record(ks_policy_t *pol, ks_ptrack_t *part, const rd_kafka_message_t *msg,
			  const ks_errbuf *err);

/** @brief A Debezium event that is no row change (@p op): counted, warned about (10 times). */
void ks_policy_non_row(ks_policy_t *pol, const rd_kafka_message_t *msg, ks_op op);

/** @brief Serve the dead-letter producer's delivery reports. */
void ks_policy_poll(ks_policy_t *pol);
/** @brief Dead letters sent and not confirmed yet. */
int ks_policy_pending(const ks_policy_t *pol);

#endif

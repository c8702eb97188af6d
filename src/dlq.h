/**
 * @file dlq.h
 * @brief Dead-letter queue: bad records go, with their original key, value and headers, to
 *        errors.dlq.topic, with headers giving the reason, the stage and the original
 *        coordinates. The bad record's offset counts as done only once Kafka acknowledged it.
 */
#ifndef KS_DLQ_H
#define KS_DLQ_H

#include <librdkafka/rdkafka.h>

#include "common.h"
#include "conf.h"
#include "metrics.h"

typedef struct ks_dlq ks_dlq_t;

/** Called from ks_dlq_poll for each delivery: err is NULL on success. */
typedef void (*ks_dlq_done_fn)(void *opaque, void *cookie, const char *err);

/** @brief Create the producer (acks=all, idempotent) from conf's kafka.* settings. */
ks_dlq_t *ks_dlq_new(const ks_conf *conf, ks_dlq_done_fn done, void *opaque, ks_errbuf *err);
/**
 * @brief Reject, offline, what ks_dlq_new would reject at start (librdkafka's cross-property
 *        rules for the producer), with the same message.
 * @returns 0 or KS_ERR_CONFIG with @p err set.
 */
int ks_dlq_check(const ks_conf *conf, ks_errbuf *err);
/** @brief Count into @p m (records_dead_lettered_truncated); NULL counts nothing. */
void ks_dlq_set_metrics(ks_dlq_t *d, ks_metrics *m);
/** @brief Flush (bounded by @p timeout_ms) and free; NULL is fine. */
void ks_dlq_destroy(ks_dlq_t *d, int timeout_ms);

/**
 * @brief Dead-letter @p msg (its key, value and headers are copied) with @p why.
 * @returns 0 (the done callback reports the outcome with @p cookie) or KS_ERR_TRANSIENT/FATAL;
 *          KS_ERR_AUTH once the brokers refused the producer's MSK IAM token (the dead letters
 *          still pending then fail through the done callback at the next ks_dlq_poll).
 */
int ks_dlq_send(ks_dlq_t *d, const rd_kafka_message_t *msg, const ks_errbuf *why, void *cookie,
		ks_errbuf *err);

/** @brief Serve delivery reports. @locality pipeline thread */
void ks_dlq_poll(ks_dlq_t *d);
/** @brief Messages sent and not yet reported. */
int ks_dlq_pending(const ks_dlq_t *d);

#endif
